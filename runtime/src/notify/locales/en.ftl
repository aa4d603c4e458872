# Penpal's messages in English: every other language falls back to these.
footer = Penpal — practise a language with an AI tutor.
greeting = Hello { $name },
not-you = If you did not create a Penpal account, ignore this email: nothing happens until the link is used.
unsubscribe-why = You get these messages because of your notification settings.
unsubscribe-action = Unsubscribe

verify-email-subject = Confirm your email address
verify-email-intro = Please confirm that this is your email address, so that you can recover your account if you lose your password.
verify-email-action = Confirm my address
verify-email-expiry = The link works once, for { $hours } hours.

password-reset-subject = Reset your Penpal password
password-reset-intro = Someone (hopefully you) asked to reset the password of your Penpal account.
password-reset-action = Choose a new password
password-reset-expiry = The link works once, for { $minutes } minutes. Resetting your password signs you out everywhere.
password-reset-not-you = If you did not ask for this, ignore this email: your password stays as it is.

password-changed-subject = Your Penpal password was changed
password-changed-intro = The password of your Penpal account was changed on { $when } (UTC).
password-changed-sessions = Your other sessions were signed out.
password-changed-action = It was not me: reset my password

welcome-subject = Welcome to Penpal
welcome-intro = Your address is confirmed: your account is ready.
welcome-tip-daily = A few minutes of conversation every day does more than an hour once a week — your streak counts the days.
welcome-tip-review = The words your tutor corrects go to your review list, so they come back until you know them.
welcome-action = Start a conversation

weekly-digest-subject = Your week on Penpal
digest-turns = { $turns ->
    [one] You wrote one message to your tutor this week.
   *[other] You wrote { $turns } messages to your tutor this week.
}
digest-accuracy = { $accuracy }% of them had no mistake.
digest-none = You did not practise this week. Ten minutes today is enough to start again.
digest-streak = { $streak ->
    [one] Your streak: one day.
   *[other] Your streak: { $streak } days in a row.
}
digest-words = Words learned: { $learned }. Words to review now: { $due }.
digest-action = See your progress

streak-reminder-subject = Keep your streak going
streak-intro = { $streak ->
    [one] You practised yesterday. A few minutes today starts a streak.
   *[other] You have practised { $streak } days in a row. A few minutes today keeps it going.
}
streak-due = { $due } words are waiting for review.
streak-action = Practise now

new-sign-in-subject = New sign-in to your Penpal account
new-sign-in-intro = Your account was signed in to from a new device on { $when } (UTC).
new-sign-in-device = Device: { $device }. Address: { $ip }.
new-sign-in-if-you = If this was you, there is nothing to do. If not, change your password now: it signs out every other device.
new-sign-in-action = It was not me: reset my password

email-change-subject = Confirm your new email address
email-change-intro = You asked to use { $new } for your Penpal account. Confirm it with this link.
email-change-action = Use this address
email-change-expiry = The link works once, for { $hours } hours. Until then, your account keeps its current address.
email-change-not-you = If you did not ask for this, ignore this email: nothing changes.

email-changed-subject = Your Penpal email address was changed
email-changed-intro = The address of your Penpal account changed from { $old } to { $new } on { $when } (UTC).
email-changed-not-you = If you did not do this, reset your password now and write to support.
email-changed-action = It was not me: reset my password

trial-ending-subject = Your Penpal trial ends soon
trial-ending-intro = Your { $plan } trial ends on { $date }.
trial-ending-then = Then your subscription continues at { $amount }, unless you cancel before.
trial-ending-action = Manage my subscription

payment-failed-subject = Your Penpal payment did not go through
payment-failed-intro = We could not take your payment of { $amount } for { $plan }.
payment-failed-retry = We will try again over the next days. Updating your payment method now keeps your subscription running.
payment-failed-action = Update my payment method

receipt-subject = Your Penpal receipt
receipt-intro = Thank you: we received { $amount } for { $plan } on { $date }.
receipt-reference = Reference: { $reference }.
receipt-action = See my invoices

refund-subject = Your Penpal refund
refund-intro = We refunded { $amount } of your payment { $reference }.
refund-when = Banks take a few days to show it on your statement.

class-invitation-subject = You are invited to a class on Penpal
class-invitation-intro = { $teacher } invites you to join { $class } at { $school } on Penpal.
class-invitation-action = Join the class
class-invitation-expiry = The invitation works for { $days } days.

school-invitation-subject = You are invited to a school on Penpal
school-invitation-intro = { $inviter } invites you to join { $school } on Penpal as { $role ->
    [admin] an administrator
    [teacher] a teacher
   *[learner] a learner
}.
school-invitation-action = Join the school

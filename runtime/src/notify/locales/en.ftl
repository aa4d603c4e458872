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

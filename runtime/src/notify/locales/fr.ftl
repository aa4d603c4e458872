# Les messages de Penpal en français.
footer = Penpal — pratiquez une langue avec un tuteur IA.
greeting = Bonjour { $name },
not-you = Si vous n’avez pas créé de compte Penpal, ignorez ce message : rien ne se passe tant que le lien n’est pas utilisé.
unsubscribe-why = Vous recevez ces messages selon vos réglages de notification.
unsubscribe-action = Se désabonner

verify-email-subject = Confirmez votre adresse e-mail
verify-email-intro = Merci de confirmer que cette adresse est bien la vôtre : elle vous permettra de récupérer votre compte si vous oubliez votre mot de passe.
verify-email-action = Confirmer mon adresse
verify-email-expiry = Le lien ne sert qu’une fois, pendant { $hours } heures.

password-reset-subject = Réinitialisez votre mot de passe Penpal
password-reset-intro = Quelqu’un (vous, espérons-le) a demandé à réinitialiser le mot de passe de votre compte Penpal.
password-reset-action = Choisir un nouveau mot de passe
password-reset-expiry = Le lien ne sert qu’une fois, pendant { $minutes } minutes. Réinitialiser votre mot de passe vous déconnecte partout.
password-reset-not-you = Si vous n’avez rien demandé, ignorez ce message : votre mot de passe reste inchangé.

password-changed-subject = Votre mot de passe Penpal a été modifié
password-changed-intro = Le mot de passe de votre compte Penpal a été modifié le { $when } (UTC).
password-changed-sessions = Vos autres sessions ont été déconnectées.
password-changed-action = Ce n’était pas moi : réinitialiser mon mot de passe

welcome-subject = Bienvenue sur Penpal
welcome-intro = Votre adresse est confirmée : votre compte est prêt.
welcome-tip-daily = Quelques minutes de conversation chaque jour valent mieux qu’une heure par semaine — votre série compte les jours.
welcome-tip-review = Les mots que votre tuteur corrige rejoignent votre liste de révision, et reviennent jusqu’à ce que vous les sachiez.
welcome-action = Commencer une conversation

weekly-digest-subject = Votre semaine sur Penpal
digest-turns = { $turns ->
    [one] Vous avez écrit un message à votre tuteur cette semaine.
   *[other] Vous avez écrit { $turns } messages à votre tuteur cette semaine.
}
digest-accuracy = { $accuracy } % d’entre eux étaient sans faute.
digest-none = Vous n’avez pas pratiqué cette semaine. Dix minutes aujourd’hui suffisent pour reprendre.
digest-streak = { $streak ->
    [one] Votre série : un jour.
   *[other] Votre série : { $streak } jours d’affilée.
}
digest-words = Mots appris : { $learned }. Mots à réviser maintenant : { $due }.
digest-action = Voir mes progrès

streak-reminder-subject = Gardez votre série
streak-intro = { $streak ->
    [one] Vous avez pratiqué hier. Quelques minutes aujourd’hui lancent une série.
   *[other] Vous pratiquez depuis { $streak } jours d’affilée. Quelques minutes aujourd’hui la prolongent.
}
streak-due = { $due } mots attendent d’être révisés.
streak-action = Pratiquer maintenant

new-sign-in-subject = Nouvelle connexion à votre compte Penpal
new-sign-in-intro = Votre compte a été ouvert depuis un nouvel appareil le { $when } (UTC).
new-sign-in-device = Appareil : { $device }. Adresse : { $ip }.
new-sign-in-if-you = Si c’était vous, il n’y a rien à faire. Sinon, changez votre mot de passe maintenant : cela déconnecte tous les autres appareils.
new-sign-in-action = Ce n’était pas moi : réinitialiser mon mot de passe

email-change-subject = Confirmez votre nouvelle adresse e-mail
email-change-intro = Vous avez demandé à utiliser { $new } pour votre compte Penpal. Confirmez-la avec ce lien.
email-change-action = Utiliser cette adresse
email-change-expiry = Le lien fonctionne une fois, pendant { $hours } heures. D’ici là, votre compte garde son adresse actuelle.
email-change-not-you = Si vous n’avez rien demandé, ignorez ce message : rien ne change.

email-changed-subject = L’adresse e-mail de votre compte Penpal a changé
email-changed-intro = L’adresse de votre compte Penpal est passée de { $old } à { $new } le { $when } (UTC).
email-changed-not-you = Si ce n’était pas vous, réinitialisez votre mot de passe maintenant et écrivez au support.
email-changed-action = Ce n’était pas moi : réinitialiser mon mot de passe

trial-ending-subject = Votre essai Penpal se termine bientôt
trial-ending-intro = Votre essai { $plan } se termine le { $date }.
trial-ending-then = Ensuite, votre abonnement continue à { $amount }, sauf si vous l’annulez avant.
trial-ending-action = Gérer mon abonnement

payment-failed-subject = Votre paiement Penpal n’a pas abouti
payment-failed-intro = Nous n’avons pas pu prélever { $amount } pour { $plan }.
payment-failed-retry = Nous réessaierons dans les prochains jours. Mettre à jour votre moyen de paiement maintenant garde votre abonnement actif.
payment-failed-action = Mettre à jour mon moyen de paiement

receipt-subject = Votre reçu Penpal
receipt-intro = Merci : nous avons reçu { $amount } pour { $plan } le { $date }.
receipt-reference = Référence : { $reference }.
receipt-action = Voir mes factures

refund-subject = Votre remboursement Penpal
refund-intro = Nous avons remboursé { $amount } de votre paiement { $reference }.
refund-when = Les banques mettent quelques jours à l’afficher sur votre relevé.

class-invitation-subject = Vous êtes invité·e à une classe sur Penpal
class-invitation-intro = { $teacher } vous invite à rejoindre { $class } de { $school } sur Penpal.
class-invitation-action = Rejoindre la classe
class-invitation-expiry = L’invitation est valable { $days } jours.

school-invitation-subject = Vous êtes invité·e dans une école sur Penpal
school-invitation-intro = { $inviter } vous invite à rejoindre { $school } sur Penpal en tant { $role ->
    [admin] qu’administrateur·rice
    [teacher] qu’enseignant·e
   *[learner] qu’élève
}.
school-invitation-action = Rejoindre l’école

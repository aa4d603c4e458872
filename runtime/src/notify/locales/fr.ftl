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

// The interface in English and French. The choice is remembered on this device (and, when
// signed in, on the account); the first visit follows the browser's language.

export const LANGS = ['en', 'fr'];

const en = {
  'nav.label': 'Main', 'nav.chat': 'Chat', 'nav.progress': 'Progress', 'nav.review': 'Review', 'nav.settings': 'Settings',
  'nav.signout': 'Sign out', 'nav.demo': 'Try it', 'nav.login': 'Sign in', 'nav.signup': 'Sign up',
  'theme.toggle': 'Dark theme', 'theme.system': 'Same as my device', 'theme.light': 'Light', 'theme.dark': 'Dark',
  'landing.title': 'Practise a language by chatting with a tutor who never tires',
  'landing.lead': 'Penpal is an AI language tutor. Write in the language you are learning; your tutor answers as it types, corrects your mistakes on your own words, and keeps the new words for you to review.',
  'landing.try': 'Try it now — no account', 'landing.signup': 'Create a free account', 'landing.features': 'What you get',
  'landing.stream.title': 'Replies as they are written', 'landing.stream.text': 'Your tutor answers word by word, at your level, about what interests you.',
  'landing.correct.title': 'Corrections on your words', 'landing.correct.text': 'Every mistake is marked where you made it, with a short explanation.',
  'landing.words.title': 'Words you keep', 'landing.words.text': 'New vocabulary becomes flashcards, scheduled so you review them just before you forget.',
  'landing.open.title': 'Open', 'landing.open.text': 'Tutor personalities are plugins anyone can write. Your data can be exported at any time.',
  'notfound.title': 'Page not found', 'notfound.text': 'There is nothing at this address.', 'notfound.home': 'Go to the home page',
  'demo.title': 'Try Penpal', 'demo.lead': 'Write a few words in French — for example “Hier, j’ai allé au cinema avec mon amis.” — and see how your tutor answers.',
  'demo.label': 'Your message in French', 'demo.placeholder': 'Bonjour ! Je m’appelle…', 'demo.thread': 'Demo conversation',
  'demo.remaining': 'Demo messages left today: {n}', 'demo.keep': 'Create an account to keep your conversations and vocabulary',
  'auth.signupTitle': 'Create your account', 'auth.loginTitle': 'Sign in', 'auth.name': 'Your name', 'auth.email': 'Email',
  'auth.password': 'Password', 'auth.policy': 'At least 10 characters; not your email.', 'auth.create': 'Create account',
  'auth.signin': 'Sign in', 'auth.haveAccount': 'Already have an account?', 'auth.noAccount': 'New to Penpal?',
  'welcome.title': 'Welcome to Penpal', 'welcome.lead': 'Five quick questions so your tutor fits you.', 'welcome.step': 'Step {n} of {of}',
  'welcome.name': 'What should your tutor call you?', 'welcome.native': 'Your native language', 'welcome.target': 'The language you want to practise',
  'welcome.selfTitle': 'Tick what you can already do in that language', 'welcome.suggested': 'Suggested level: {level}',
  'welcome.level': 'Your level', 'welcome.goals': 'Your goals', 'welcome.interests': 'Your interests',
  'welcome.listHint': 'Separate with commas, e.g. travel, work', 'welcome.back': 'Back', 'welcome.next': 'Next', 'welcome.finish': 'Start practising',
  'cando.A1': 'Introduce myself and ask simple questions', 'cando.A2': 'Talk about my day, order food, ask the way',
  'cando.B1': 'Tell a story about the past and give my opinion', 'cando.B2': 'Discuss news and abstract topics with some ease',
  'cando.C1': 'Express myself fluently at work or in studies',
  'level.A1': 'beginner', 'level.A2': 'elementary', 'level.B1': 'intermediate', 'level.B2': 'upper intermediate', 'level.C1': 'advanced', 'level.C2': 'proficient',
  'chat.list': 'Conversations', 'chat.new': 'New conversation', 'chat.more': 'Show more', 'chat.none': 'No conversations yet.',
  'chat.newTitle': 'New conversation', 'chat.mode': 'How would you like to practise?', 'chat.personality': 'Tutor',
  'chat.noTutor': 'No tutor offers this mode in this language yet.', 'chat.scenario': 'Scene', 'chat.topic': 'Topic (optional)',
  'chat.topicHint': 'For example: my weekend, cooking, a job interview', 'chat.start': 'Start',
  'mode.tutor': 'Lesson', 'mode.tutor.text': 'explicit corrections, explained', 'mode.conversation': 'Conversation',
  'mode.conversation.text': 'natural chat, mistakes recast', 'mode.role-play': 'Role-play', 'mode.role-play.text': 'a scene with roles and a goal',
  'chat.thread': 'Messages', 'chat.earlier': 'Show earlier messages', 'chat.message': 'Your message',
  'chat.placeholder': 'Write in {lang}…', 'chat.keys': 'Enter sends; Shift+Enter starts a new line.', 'chat.send': 'Send',
  'chat.typing': 'Your tutor is writing…', 'chat.corrections': 'Corrections', 'chat.correctionsCount': '{n} correction(s) on your message.',
  'chat.newWords': 'New words', 'chat.failed': 'Not answered.', 'chat.retry': 'Try again', 'chat.debrief': 'Debrief',
  'chat.back': '← Conversations', 'chat.rename': 'Rename', 'chat.renamePrompt': 'New title', 'chat.delete': 'Delete',
  'chat.deleteConfirm': 'Delete this conversation and its messages?',
  'conn.online': 'Connected', 'conn.connecting': 'Connecting…', 'conn.reconnecting': 'Connection lost — reconnecting…', 'conn.offline': 'You are offline — your message will wait until you are back.',
  'progress.title': 'Your progress', 'progress.messages': 'Messages', 'progress.conversations': 'Conversations', 'progress.streak': 'Day streak',
  'progress.accuracy': 'Accuracy', 'progress.learned': 'Words learned', 'progress.due': 'Words due', 'progress.seen': 'Words seen',
  'progress.activity': 'Activity, last 30 days', 'progress.activityAlt': 'Messages per day', 'progress.accuracyTrend': 'Accuracy trend',
  'progress.accuracyAlt': 'Share of messages without errors, per day', 'progress.errors': 'Errors by category', 'progress.errorsAlt': 'Errors by category',
  'progress.noErrors': 'No errors recorded yet.', 'progress.vocab': 'Vocabulary', 'progress.vocabAlt': 'Vocabulary due, learned and seen',
  'progress.levelOffer': 'Your recent messages suggest moving from {from} to {to}.', 'progress.levelAct': 'Review in settings',
  'category.grammar': 'Grammar', 'category.spelling': 'Spelling', 'category.vocabulary': 'Vocabulary', 'category.conjugation': 'Conjugation', 'category.agreement': 'Agreement',
  'review.title': 'Vocabulary review', 'review.start': 'Review now', 'review.count': 'Card {n} of {of}', 'review.card': 'Flashcard',
  'review.show': 'Show answer', 'review.how': 'How well did you remember?', 'review.again': 'Again', 'review.hard': 'Hard',
  'review.good': 'Good', 'review.easy': 'Easy', 'review.done': 'Well done: {n} card(s) reviewed.', 'review.none': 'Nothing to review right now.',
  'review.practise': 'Back to chatting',
  'settings.title': 'Profile and settings', 'settings.profile': 'Profile', 'settings.targets': 'Languages you practise',
  'settings.language': 'Language', 'settings.level': 'Level', 'settings.remove': 'Remove', 'settings.addLanguage': 'Add a language',
  'settings.intensity': 'Corrections', 'intensity.off': 'Off — just talk', 'intensity.gentle': 'Gentle — the ones that matter', 'intensity.every_error': 'Every error',
  'settings.appearance': 'Appearance', 'settings.interface': 'Interface language', 'settings.theme': 'Theme', 'settings.save': 'Save',
  'settings.saved': 'Saved.', 'settings.acceptLevel': 'Change my level', 'settings.dataTitle': 'Your data',
  'settings.dataText': 'Download everything Penpal holds about you, or your vocabulary for Anki.', 'settings.export': 'Export my data',
  'settings.exported': 'Your export is downloading.', 'settings.anki': 'Vocabulary for Anki (CSV)',
  'settings.deleteTitle': 'Delete my account', 'settings.deleteText': 'This deletes your account, conversations and vocabulary for good.',
  'settings.delete': 'Delete my account', 'settings.deleteConfirm': 'Delete your account and everything in it? This cannot be undone.',
  'settings.deleted': 'Your account has been deleted.',
  'error.offline': 'Penpal cannot be reached. Check your connection and try again.', 'error.server': 'Something went wrong on our side. Please try again.',
  'error.wait': 'Too many attempts: try again in {s} seconds.',
  'turn.llm_unavailable': 'The tutor could not answer right now. Your message is saved: try again.',
  'turn.tutor_unavailable': 'This tutor personality is unavailable right now. Your message is saved: try again.',
  'turn.internal': 'Something went wrong on our side. Your message is saved: try again.',
  'turn.support': 'Support id: {id}',
};

const fr = {
  'nav.label': 'Principale', 'nav.chat': 'Discuter', 'nav.progress': 'Progrès', 'nav.review': 'Révision', 'nav.settings': 'Réglages',
  'nav.signout': 'Se déconnecter', 'nav.demo': 'Essayer', 'nav.login': 'Se connecter', 'nav.signup': 'S’inscrire',
  'theme.toggle': 'Thème sombre', 'theme.system': 'Comme mon appareil', 'theme.light': 'Clair', 'theme.dark': 'Sombre',
  'landing.title': 'Pratiquez une langue en discutant avec un tuteur infatigable',
  'landing.lead': 'Penpal est un tuteur de langues par IA. Écrivez dans la langue que vous apprenez : votre tuteur répond au fil de la frappe, corrige vos erreurs sur vos propres mots et garde les mots nouveaux pour vos révisions.',
  'landing.try': 'Essayer sans compte', 'landing.signup': 'Créer un compte gratuit', 'landing.features': 'Ce que vous obtenez',
  'landing.stream.title': 'Des réponses en direct', 'landing.stream.text': 'Votre tuteur répond mot à mot, à votre niveau, sur ce qui vous intéresse.',
  'landing.correct.title': 'Des corrections sur vos mots', 'landing.correct.text': 'Chaque erreur est marquée là où vous l’avez faite, avec une courte explication.',
  'landing.words.title': 'Des mots qui restent', 'landing.words.text': 'Le vocabulaire nouveau devient des cartes, révisées juste avant l’oubli.',
  'landing.open.title': 'Ouvert', 'landing.open.text': 'Les personnalités de tuteur sont des extensions que chacun peut écrire. Vos données s’exportent à tout moment.',
  'notfound.title': 'Page introuvable', 'notfound.text': 'Il n’y a rien à cette adresse.', 'notfound.home': 'Aller à l’accueil',
  'demo.title': 'Essayer Penpal', 'demo.lead': 'Écrivez quelques mots en français — par exemple « Hier, j’ai allé au cinema avec mon amis. » — et voyez comment votre tuteur répond.',
  'demo.label': 'Votre message en français', 'demo.placeholder': 'Bonjour ! Je m’appelle…', 'demo.thread': 'Conversation d’essai',
  'demo.remaining': 'Messages d’essai restants aujourd’hui : {n}', 'demo.keep': 'Créez un compte pour garder vos conversations et votre vocabulaire',
  'auth.signupTitle': 'Créer votre compte', 'auth.loginTitle': 'Se connecter', 'auth.name': 'Votre nom', 'auth.email': 'Adresse e-mail',
  'auth.password': 'Mot de passe', 'auth.policy': 'Au moins 10 caractères, différent de votre e-mail.', 'auth.create': 'Créer le compte',
  'auth.signin': 'Se connecter', 'auth.haveAccount': 'Déjà un compte ?', 'auth.noAccount': 'Nouveau sur Penpal ?',
  'welcome.title': 'Bienvenue sur Penpal', 'welcome.lead': 'Cinq questions rapides pour que votre tuteur vous corresponde.', 'welcome.step': 'Étape {n} sur {of}',
  'welcome.name': 'Comment votre tuteur doit-il vous appeler ?', 'welcome.native': 'Votre langue maternelle', 'welcome.target': 'La langue que vous voulez pratiquer',
  'welcome.selfTitle': 'Cochez ce que vous savez déjà faire dans cette langue', 'welcome.suggested': 'Niveau suggéré : {level}',
  'welcome.level': 'Votre niveau', 'welcome.goals': 'Vos objectifs', 'welcome.interests': 'Vos centres d’intérêt',
  'welcome.listHint': 'Séparez par des virgules, p. ex. voyage, travail', 'welcome.back': 'Retour', 'welcome.next': 'Suivant', 'welcome.finish': 'Commencer',
  'cando.A1': 'Me présenter et poser des questions simples', 'cando.A2': 'Parler de ma journée, commander, demander le chemin',
  'cando.B1': 'Raconter un événement passé et donner mon avis', 'cando.B2': 'Discuter de l’actualité et de sujets abstraits avec aisance',
  'cando.C1': 'M’exprimer couramment au travail ou dans mes études',
  'level.A1': 'débutant', 'level.A2': 'élémentaire', 'level.B1': 'intermédiaire', 'level.B2': 'intermédiaire avancé', 'level.C1': 'avancé', 'level.C2': 'maîtrise',
  'chat.list': 'Conversations', 'chat.new': 'Nouvelle conversation', 'chat.more': 'Afficher plus', 'chat.none': 'Aucune conversation pour l’instant.',
  'chat.newTitle': 'Nouvelle conversation', 'chat.mode': 'Comment voulez-vous pratiquer ?', 'chat.personality': 'Tuteur',
  'chat.noTutor': 'Aucun tuteur ne propose encore ce mode dans cette langue.', 'chat.scenario': 'Scène', 'chat.topic': 'Sujet (facultatif)',
  'chat.topicHint': 'Par exemple : mon week-end, la cuisine, un entretien d’embauche', 'chat.start': 'Commencer',
  'mode.tutor': 'Leçon', 'mode.tutor.text': 'corrections explicites et expliquées', 'mode.conversation': 'Conversation',
  'mode.conversation.text': 'discussion naturelle, erreurs reformulées', 'mode.role-play': 'Jeu de rôle', 'mode.role-play.text': 'une scène avec des rôles et un but',
  'chat.thread': 'Messages', 'chat.earlier': 'Afficher les messages précédents', 'chat.message': 'Votre message',
  'chat.placeholder': 'Écrivez en {lang}…', 'chat.keys': 'Entrée envoie ; Maj+Entrée passe à la ligne.', 'chat.send': 'Envoyer',
  'chat.typing': 'Votre tuteur écrit…', 'chat.corrections': 'Corrections', 'chat.correctionsCount': '{n} correction(s) sur votre message.',
  'chat.newWords': 'Mots nouveaux', 'chat.failed': 'Sans réponse.', 'chat.retry': 'Réessayer', 'chat.debrief': 'Bilan',
  'chat.back': '← Conversations', 'chat.rename': 'Renommer', 'chat.renamePrompt': 'Nouveau titre', 'chat.delete': 'Supprimer',
  'chat.deleteConfirm': 'Supprimer cette conversation et ses messages ?',
  'conn.online': 'Connecté', 'conn.connecting': 'Connexion…', 'conn.reconnecting': 'Connexion perdue — reconnexion…', 'conn.offline': 'Vous êtes hors ligne — votre message attendra votre retour.',
  'progress.title': 'Vos progrès', 'progress.messages': 'Messages', 'progress.conversations': 'Conversations', 'progress.streak': 'Jours d’affilée',
  'progress.accuracy': 'Justesse', 'progress.learned': 'Mots appris', 'progress.due': 'Mots à réviser', 'progress.seen': 'Mots vus',
  'progress.activity': 'Activité, 30 derniers jours', 'progress.activityAlt': 'Messages par jour', 'progress.accuracyTrend': 'Évolution de la justesse',
  'progress.accuracyAlt': 'Part des messages sans erreur, par jour', 'progress.errors': 'Erreurs par catégorie', 'progress.errorsAlt': 'Erreurs par catégorie',
  'progress.noErrors': 'Aucune erreur enregistrée pour l’instant.', 'progress.vocab': 'Vocabulaire', 'progress.vocabAlt': 'Vocabulaire à réviser, appris et vu',
  'progress.levelOffer': 'Vos messages récents suggèrent de passer de {from} à {to}.', 'progress.levelAct': 'Voir dans les réglages',
  'category.grammar': 'Grammaire', 'category.spelling': 'Orthographe', 'category.vocabulary': 'Vocabulaire', 'category.conjugation': 'Conjugaison', 'category.agreement': 'Accord',
  'review.title': 'Révision du vocabulaire', 'review.start': 'Réviser', 'review.count': 'Carte {n} sur {of}', 'review.card': 'Carte',
  'review.show': 'Voir la réponse', 'review.how': 'Vous en êtes-vous souvenu ?', 'review.again': 'À revoir', 'review.hard': 'Difficile',
  'review.good': 'Bien', 'review.easy': 'Facile', 'review.done': 'Bravo : {n} carte(s) révisée(s).', 'review.none': 'Rien à réviser pour l’instant.',
  'review.practise': 'Retour à la discussion',
  'settings.title': 'Profil et réglages', 'settings.profile': 'Profil', 'settings.targets': 'Langues pratiquées',
  'settings.language': 'Langue', 'settings.level': 'Niveau', 'settings.remove': 'Retirer', 'settings.addLanguage': 'Ajouter une langue',
  'settings.intensity': 'Corrections', 'intensity.off': 'Aucune — juste discuter', 'intensity.gentle': 'Douces — l’essentiel', 'intensity.every_error': 'Toutes les erreurs',
  'settings.appearance': 'Apparence', 'settings.interface': 'Langue de l’interface', 'settings.theme': 'Thème', 'settings.save': 'Enregistrer',
  'settings.saved': 'Enregistré.', 'settings.acceptLevel': 'Changer mon niveau', 'settings.dataTitle': 'Vos données',
  'settings.dataText': 'Téléchargez tout ce que Penpal détient sur vous, ou votre vocabulaire pour Anki.', 'settings.export': 'Exporter mes données',
  'settings.exported': 'Votre export est en cours de téléchargement.', 'settings.anki': 'Vocabulaire pour Anki (CSV)',
  'settings.deleteTitle': 'Supprimer mon compte', 'settings.deleteText': 'Votre compte, vos conversations et votre vocabulaire seront supprimés définitivement.',
  'settings.delete': 'Supprimer mon compte', 'settings.deleteConfirm': 'Supprimer votre compte et tout son contenu ? C’est irréversible.',
  'settings.deleted': 'Votre compte a été supprimé.',
  'error.offline': 'Penpal est injoignable. Vérifiez votre connexion et réessayez.', 'error.server': 'Un problème est survenu de notre côté. Réessayez.',
  'error.wait': 'Trop de tentatives : réessayez dans {s} secondes.',
  'turn.llm_unavailable': 'Le tuteur n’a pas pu répondre pour l’instant. Votre message est enregistré : réessayez.',
  'turn.tutor_unavailable': 'Cette personnalité de tuteur est indisponible pour l’instant. Votre message est enregistré : réessayez.',
  'turn.internal': 'Un problème est survenu de notre côté. Votre message est enregistré : réessayez.',
  'turn.support': 'Identifiant pour le support : {id}',
};

const dicts = { en, fr };
let lang = 'en';

/** The interface language: remembered, else the browser's. */
export function getLang() {
  const saved = localStorage.getItem('penpal.lang');
  if (saved && LANGS.includes(saved)) return saved;
  if (lang !== 'en') return lang;
  return (navigator.language || 'en').toLowerCase().startsWith('fr') ? 'fr' : 'en';
}

/** Switches the interface language and, unless told not to, remembers it on this device. */
export function setLang(l, remember = true) {
  lang = LANGS.includes(l) ? l : 'en';
  if (remember) localStorage.setItem('penpal.lang', lang);
  document.documentElement.lang = lang;
}

/** The text for `key` with `{name}` placeholders filled; `fallback` when there is none. */
export function t(key, vars = {}, fallback) {
  const s = dicts[lang][key] ?? en[key] ?? fallback ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}

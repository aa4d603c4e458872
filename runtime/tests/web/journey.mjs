// The learner web app in Debian's Chromium, end to end, as a new visitor uses it: the demo,
// sign-up, onboarding, the mailed link that confirms the address, a streamed conversation with
// a correction, a reload, French, a vocabulary review, the data export, and a forgotten
// password reset through its mailed link. Every page is checked with axe-core and
// photographed at desktop and phone sizes. Run by `cargo test -p penpal --test integration -- web::`, which starts
// the server and passes its address in PENPAL_URL.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BASE, browser, log, watch, audit, shoot, check, mailedLink, mailedMatch, run } from './harness.mjs';

await run('journey', async () => {
  // ---- Desktop, light theme: the whole journey. ----
  const desk = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-GB', timezoneId: 'Europe/Paris', colorScheme: 'light', acceptDownloads: true });
  const page = await desk.newPage();
  watch(page);
  const liveSockets = [];
  await page.routeWebSocket(/\/live\?/, (ws) => {
    ws.connectToServer();
    liveSockets.push(ws);
  });

  log('landing page says what Penpal is, with security headers');
  const resp = await page.goto(BASE + '/');
  const headers = resp.headers();
  assert.match(headers['content-security-policy'], /script-src 'self'/);
  assert.doesNotMatch(headers['content-security-policy'], /unsafe-inline/);
  assert.match(headers['content-security-policy'], /frame-ancestors 'none'/);
  assert.equal(headers['x-content-type-options'], 'nosniff');
  assert.equal(headers['referrer-policy'], 'no-referrer');
  assert.equal(headers['x-frame-options'], 'DENY');
  await page.locator('body[data-ready="true"]').waitFor();
  assert.match(await page.locator('h1').innerText(), /language/i);
  await check(page, 'landing-desktop', '/');

  log('the demo answers without an account, with a correction on the visitor\'s words');
  await page.getByRole('link', { name: /Try it now/ }).click();
  await check(page, 'demo-desktop', '/demo');
  const demoBox = page.getByLabel('Your message in French');
  await demoBox.fill("Hier, j'ai allé au cinema.");
  await demoBox.press('Enter');
  await page.locator('.thread .msg.tutor:not(.pending)').waitFor();
  assert.match(await page.locator('.thread .msg.learner mark').first().innerText(), /j'ai allé/i);
  assert.match(await page.locator('.thread .msg.learner .corrections').innerText(), /je suis allé/);
  await shoot(page, 'demo-answered-desktop');

  log('sign in page, then sign up');
  await page.getByRole('link', { name: 'Sign in' }).first().click();
  await check(page, 'login-desktop', '/login');
  await page.getByRole('link', { name: 'Sign up' }).first().click();
  await check(page, 'signup-desktop', '/signup');
  const email = `ana.${Date.now()}@example.com`;
  const password = 'correct horse battery';
  await page.getByLabel('Your name').fill('Ana');
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password').fill('short');
  await page.getByRole('button', { name: 'Create account' }).click();
  // The browser's own check or the server's: either way the form says what is wrong.
  assert.equal(new URL(page.url()).pathname, '/signup');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();

  log('onboarding in steps, with a self-assessment that suggests a level');
  await check(page, 'welcome-desktop', '/welcome');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByLabel('Your native language').selectOption('en');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByLabel('The language you want to practise').selectOption('fr');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByLabel('Introduce myself').check();
  await page.getByLabel('Talk about my day').check();
  await page.getByText('Suggested level: A2').waitFor();
  assert.equal(await page.getByLabel('Your level').inputValue(), 'A2');
  await audit(page, 'welcome level step');
  await shoot(page, 'welcome-level-desktop');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByLabel('Your goals').fill('travel, work');
  await page.getByLabel('Your interests').fill('cinema, cooking');
  await page.getByRole('button', { name: 'Start practising' }).click();

  log('no token is kept where scripts can read it');
  await page.waitForURL((u) => u.pathname === '/chat');
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  assert.doesNotMatch(stored, /eyJ/, 'a JWT is readable by page scripts');
  assert.doesNotMatch(stored, /penpal_refresh/, 'the refresh cookie is readable by page scripts');
  const cookies = await desk.cookies();
  const refresh = cookies.find((c) => c.name === 'penpal_refresh');
  assert.ok(refresh && refresh.httpOnly && refresh.sameSite === 'Strict', 'the refresh cookie is HttpOnly and SameSite=Strict');

  log('the unverified banner, and the mailed link that confirms the address');
  await page.getByText('Please confirm your email address').waitFor();
  // A link in a mail opens in a tab of its own.
  const mailTab = await desk.newPage();
  watch(mailTab);
  await mailTab.goto(await mailedLink(email, 'verify-email'));
  await check(mailTab, 'verify-email-desktop', '/verify-email');
  await mailTab.getByText('your email address is confirmed').waitFor();
  assert.equal(new URL(mailTab.url()).hash, '', 'the token leaves the address bar');
  await mailTab.getByRole('link', { name: 'Continue' }).click();
  await mailTab.waitForURL((u) => u.pathname === '/chat');
  await mailTab.locator('main h1').first().waitFor();
  assert.equal(await mailTab.getByText('Please confirm your email address').count(), 0, 'no banner once confirmed');
  await mailTab.close();

  log('the welcome mail unsubscribes in one click, after asking (scanners open links too)');
  const unsubTab = await desk.newPage();
  watch(unsubTab);
  await unsubTab.goto(await mailedMatch(email, /https?:\/\/[^\s"<>]*\/unsubscribe\?token=[A-Za-z0-9_.-]+/));
  await check(unsubTab, 'unsubscribe-desktop', '/unsubscribe');
  await unsubTab.getByRole('button', { name: 'Unsubscribe' }).click();
  await unsubTab.getByText('you will no longer get “Account” messages').waitFor();
  await unsubTab.close();

  log('a new conversation');
  await check(page, 'chat-new-desktop', '/chat');
  await page.getByLabel('Topic (optional)').fill('my weekend');
  await page.getByRole('button', { name: 'Start' }).click();
  await page.waitForURL(/\/chat\/[A-Za-z0-9_-]+$/);
  const convUrl = page.url();
  await page.locator('.conn[data-state="online"]').waitFor();

  log('Shift+Enter breaks a line, Enter sends, the reply streams in');
  const box = page.getByLabel('Your message');
  await box.focus();
  await page.keyboard.type('Salut');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('ça va');
  assert.equal(await box.inputValue(), 'Salut\nça va');
  await box.fill('');
  // Record what the tutor's bubble shows as the reply arrives.
  await page.evaluate(() => {
    window.__seen = [];
    new MutationObserver(() => {
      const b = document.querySelector('.msg.tutor.streaming p');
      if (b) window.__seen.push(b.textContent.length);
    }).observe(document.querySelector('.thread'), { subtree: true, childList: true, characterData: true });
  });
  await box.type("Samedi, j'ai allé au cinema avec mon amis.");
  await box.press('Enter');
  const reply = page.locator('.thread .msg.tutor:not(.streaming)').last();
  await reply.waitFor();
  const partial = await page.evaluate(() => [...new Set(window.__seen)].filter((n) => n > 0));
  assert.ok(partial.length >= 3, `the reply should appear piece by piece, saw lengths ${JSON.stringify(partial)}`);
  assert.match(await reply.innerText(), /level A2/, 'the reply follows the onboarding level');
  const mine = page.locator('.thread .msg.learner').last();
  await mine.locator('mark').first().waitFor();
  const correctionText = await mine.locator('.corrections').innerText();
  assert.match(correctionText, /je suis allé/);
  assert.match(correctionText, /Aller se conjugue avec être/);
  assert.match(await mine.locator('.vocab').innerText(), /cinema|samedi/i, 'new words show with the turn');
  assert.match(await page.locator('#announcer').innerText(), /penpal-scripted/, 'the live region reads the reply');
  assert.equal(await box.inputValue(), '');
  await audit(page, 'chat thread');
  await shoot(page, 'chat-desktop');

  log('a model failure keeps the message, and Try again answers it');
  // `[[flaky]]` makes the scripted model cut its stream the first time it sees a request.
  await box.fill('Je voudrais réserver une table [[flaky]]');
  await box.press('Enter');
  const failed = page.locator('.thread .msg.learner').last();
  await failed.getByRole('button', { name: 'Try again' }).waitFor();
  assert.match(await failed.innerText(), /Not answered/);
  assert.match(await failed.innerText(), /réserver une table/);
  await page.locator('form.composer .error').waitFor();
  // The page's own words and a support id, never what the model said.
  assert.match(await page.locator('form.composer .error').innerText(),
    /The tutor could not answer right now\. Your message is saved: try again\. Support id: \w{12}/);
  await shoot(page, 'chat-failed-desktop');
  await failed.getByRole('button', { name: 'Try again' }).click();
  await page.locator('.thread .msg.tutor:not(.streaming)').nth(1).waitFor();
  assert.match(await page.locator('.thread .msg.tutor').last().innerText(), /réserver une table/);
  assert.doesNotMatch(await failed.innerText(), /Not answered/);

  log('JavaScript for the chat page stays small');
  const js = await page.evaluate(() => performance.getEntriesByType('resource')
    .filter((r) => r.name.endsWith('.js')).reduce((n, r) => n + r.encodedBodySize, 0));
  console.log(`  chat page JavaScript: ${(js / 1024).toFixed(1)} KiB as transferred (gzip)`);
  assert.ok(js > 0 && js <= 100 * 1024, `chat page JavaScript is ${js} bytes gzipped`);

  log('the connection drops and comes back, visibly');
  // The socket runs through the test (to the real server), so the test can cut it.
  assert.ok(liveSockets.length >= 1, 'the chat socket went through the test route');
  liveSockets.at(-1).close({ code: 1012, reason: 'server restarting' });
  await page.locator('.conn[data-state="reconnecting"]').waitFor();
  assert.match(await page.locator('.conn').innerText(), /reconnecting/);
  await shoot(page, 'chat-reconnecting-desktop');
  await page.locator('.conn[data-state="online"]').waitFor({ timeout: 20000 });
  // The browser saying it is offline shows too, and coming back recovers.
  await page.evaluate(() => window.dispatchEvent(new Event('offline')));
  await page.locator('.conn[data-state="offline"]').waitFor();
  await page.evaluate(() => window.dispatchEvent(new Event('online')));
  await page.locator('.conn[data-state="online"]').waitFor();

  log('reload: still signed in, the conversation and its correction are there');
  await page.reload();
  await page.locator('.conn[data-state="online"]').waitFor();
  assert.equal(page.url(), convUrl);
  await page.locator('.thread .msg.learner mark').first().waitFor();
  assert.match(await page.locator('.sidebar').innerText(), /my weekend|weekend/i);
  assert.equal(await page.locator('.thread .msg').count(), 4);

  log('the interface switches to French and remembers it');
  await page.getByLabel('Interface language').selectOption('fr');
  await page.getByRole('link', { name: 'Discuter' }).waitFor();
  assert.equal(await page.locator('html').getAttribute('lang'), 'fr');
  await page.reload();
  await page.getByRole('link', { name: 'Progrès' }).waitFor();
  await shoot(page, 'chat-fr-desktop');

  log('progress dashboard');
  await page.getByRole('link', { name: 'Progrès' }).click();
  await check(page, 'progress-desktop', '/progress');
  assert.equal(await page.locator('.chart').count(), 2);
  assert.match(await page.locator('.stats').innerText(), /Messages\s*2/);
  assert.match(await page.locator('.hbars').first().innerText(), /Grammaire\s*2/);

  log('vocabulary review as flashcards');
  await page.getByRole('link', { name: 'Révision' }).click();
  await check(page, 'review-desktop', '/review');
  const term = await page.locator('.flashcard .term').innerText();
  assert.ok(term.length > 0);
  assert.match(await page.locator('main').innerText(), /Carte 1 sur 2/);
  await page.getByRole('button', { name: 'Voir la réponse' }).click();
  await audit(page, 'review answer');
  await shoot(page, 'review-answer-desktop');
  await page.getByRole('button', { name: 'Bien' }).click();
  await page.getByText('Carte 2 sur 2').waitFor();
  await page.getByRole('button', { name: 'Voir la réponse' }).click();
  await page.getByRole('button', { name: 'À revoir' }).click();
  await page.getByText('Bravo : 2 carte(s) révisée(s).').waitFor();

  log('settings: export my data');
  await page.getByRole('link', { name: 'Réglages' }).click();
  await check(page, 'settings-desktop', '/settings');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Exporter mes données' }).click(),
  ]);
  const exported = JSON.parse(readFileSync(await download.path(), 'utf8'));
  assert.equal(exported.account.email, email);
  assert.equal(exported.account.profile.interface_language, 'fr');
  assert.ok(exported.conversations[0].messages.some((m) => m.text.includes('cinema')), 'the export holds the conversation');
  assert.ok(exported.vocabulary.some((v) => v.reps >= 1), 'the export holds the reviewed card');
  assert.equal(exported.account.time_zone, 'Europe/Paris', 'sign-up kept the browser’s time zone');

  log('settings: notifications, in the learner’s own time zone');
  const notif = page.locator('#notifications');
  assert.equal(await notif.getByLabel('Fuseau horaire').inputValue(), 'Europe/Paris');
  assert.equal(await notif.getByRole('checkbox', { name: 'Compte — E-mail' }).isChecked(), false, 'the unsubscribe shows here');
  assert.ok(await notif.getByRole('checkbox', { name: 'Sécurité — E-mail' }).isDisabled(), 'security notices cannot be turned off');
  assert.equal(await notif.getByRole('checkbox', { name: 'Nouveautés et offres — E-mail' }).isChecked(), false, 'news is opt-in');
  await notif.getByRole('checkbox', { name: 'Progrès — E-mail' }).uncheck();
  await notif.getByLabel('Heures calmes').check();
  await notif.getByLabel('De', { exact: true }).fill('21:30');
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/v1/me/notifications') && r.request().method() === 'PATCH' && r.ok()),
    notif.getByRole('button', { name: 'Enregistrer' }).click(),
  ]);
  await page.reload();
  const again = page.locator('#notifications');
  assert.equal(await again.getByLabel('De', { exact: true }).inputValue(), '21:30', 'quiet hours are kept');
  assert.equal(await again.getByRole('checkbox', { name: 'Progrès — E-mail' }).isChecked(), false);

  log('a free learner asks for role-play: refused, with the way to the plans');
  await page.goto(BASE + '/chat');
  // The mode picker names each mode as a heading would (it once showed the plan list's words).
  await page.getByLabel(/^Jeu de rôle —/).check();
  await page.getByRole('button', { name: 'Commencer' }).click();
  await page.getByText(/Role-play conversations are not part of the Gratuit plan|not part of the Free plan/).waitFor();
  await page.getByRole('link', { name: 'Voir les formules' }).click();
  await page.waitForURL((u) => u.pathname === '/pricing');

  log('pricing: a free trial started on the payment page, shown in settings');
  await page.getByRole('navigation', { name: 'Principale' }).getByRole('link', { name: 'Tarifs' }).click();
  await page.waitForURL((u) => u.pathname === '/pricing');
  await check(page, 'pricing-desktop', '/pricing');
  const premium = page.locator('section.plan', { has: page.getByRole('heading', { name: 'Premium' }) });
  await premium.getByText(/20,00\s€/).waitFor();
  // A British browser shows no VAT; a learner in France picks it and sees the VAT inside.
  const where = page.getByLabel('Pays (pour la TVA)');
  assert.equal(await where.inputValue(), '', 'the United Kingdom is outside EU VAT');
  assert.equal(await premium.getByText(/TVA/).count(), 0);
  await where.selectOption('FR');
  await page.waitForURL((u) => u.searchParams.get('country') === 'FR');
  await premium.getByText(/TVA 20\s?%\s?incluse \(3,33\s€\)/).waitFor();
  await premium.getByText('30 jours offerts pour commencer').waitFor();
  await premium.getByRole('button', { name: 'Commencer mon essai gratuit' }).click();
  await page.getByRole('heading', { name: 'Stripe checkout (simulator)' }).waitFor();
  await page.getByRole('button', { name: 'Pay' }).click();
  await page.waitForURL((u) => u.pathname === '/settings');
  for (let i = 0; i < 50 && !(await page.getByText('En période d’essai.').count()); i++) {
    await new Promise((r) => setTimeout(r, 200));
    await page.reload();
  }
  const planCard = page.locator('#plan');
  await planCard.getByText('En période d’essai.').waitFor();
  await planCard.getByText('votre abonnement').waitFor();
  // A trial charges nothing: no payment yet.
  await planCard.getByRole('heading', { name: 'Paiements' }).waitFor();
  await planCard.getByText('Aucun paiement pour l’instant.').waitFor();
  await check(page, 'settings-plan-desktop', '/settings');

  log('a school invitation: they join as an administrator and see the school and its LMS in settings');
  await page.goto(process.env.JOIN_URL);
  await check(page, 'join-desktop', '/join');
  await page.getByText('Vous êtes invité·e à rejoindre Lycée Hugo sur Penpal en tant qu’administrateur·rice.').waitFor();
  await page.getByRole('button', { name: 'Rejoindre l’école' }).click();
  await page.waitForURL((u) => u.pathname === '/settings');
  const schoolCard = page.locator('#schools');
  await schoolCard.getByText('Lycée Hugo').first().waitFor();
  await schoolCard.getByRole('heading', { name: 'Plateformes d’apprentissage de Lycée Hugo' }).waitFor();
  await schoolCard.getByText('Moodle', { exact: true }).waitFor();
  await schoolCard.getByRole('button', { name: 'Créer un lien d’enregistrement' }).click();
  const regLink = schoolCard.getByLabel(/Lien d’enregistrement/);
  await regLink.waitFor();
  assert.match(await regLink.inputValue(), /\/lti\/register\/[A-Za-z0-9_-]+$/);
  await schoolCard.getByRole('heading', { name: 'Membres de Lycée Hugo' }).waitFor();
  await schoolCard.getByLabel('Rôle', { exact: true }).selectOption('teacher');
  await schoolCard.getByRole('button', { name: 'Inviter' }).click();
  const teacherLink = schoolCard.getByLabel(/Lien d’invitation/);
  await teacherLink.waitFor();
  assert.match(await teacherLink.inputValue(), /\/join\?token=/);
  const teacherInvite = schoolCard.getByRole('listitem').filter({ hasText: 'enseignant·e — par lien' });
  await teacherInvite.waitFor();
  await teacherInvite.getByRole('button', { name: 'Révoquer' }).click();
  await teacherInvite.waitFor({ state: 'detached' });
  await check(page, 'settings-school-admin-desktop', '/settings');

  log('the admin lets the school’s people sign in with the school’s own accounts');
  const sso = schoolCard.locator('section.sso');
  await sso.getByRole('heading', { name: 'Connexion avec les comptes de Lycée Hugo' }).waitFor();
  await sso.getByText('Non configuré').waitFor();
  await sso.getByLabel('URL de l’émetteur').fill(process.env.IDP_URL);
  await sso.getByLabel('Identifiant client').fill('penpal-web');
  await sso.getByLabel('Secret client').fill('web-idp-secret');
  await sso.getByLabel(/Domaines d’adresse/).fill('hugo.example');
  await sso.getByRole('button', { name: 'Enregistrer la connexion' }).click();
  await sso.getByText('Enregistré : la configuration du fournisseur a été lue et vérifiée.').waitFor();
  assert.equal(await sso.getByLabel('Secret client').inputValue(), '', 'the secret is never shown again');
  await sso.getByText(`${BASE}/sso/callback`).waitFor();

  log('a learner of the school signs in with the school’s account from the sign-in page');
  const pupilCtx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-GB' });
  const pupil = await pupilCtx.newPage();
  watch(pupil);
  await pupil.goto(BASE + '/login');
  await check(pupil, 'login-school-desktop', '/login');
  await pupil.getByRole('heading', { name: 'Sign in with your school' }).waitFor();
  await pupil.getByLabel('School email').fill('lea@elsewhere.example');
  await pupil.getByRole('button', { name: 'Continue with my school' }).click();
  await pupil.getByText('No school signs in people with this address').waitFor();
  await pupil.getByLabel('School email').fill('lea@hugo.example');
  await pupil.getByRole('button', { name: 'Continue with my school' }).click();
  // The provider does not know that address: its page lists whom to sign in as.
  await pupil.getByRole('link', { name: 'Continue as Léa Martin (lea.martin@hugo.example)' }).click();
  await pupil.waitForURL((u) => u.pathname === '/classes');
  await check(pupil, 'sso-classes-desktop', '/classes');
  await pupil.getByText('Lycée Hugo').first().waitFor();
  await pupilCtx.close();

  log('the admin makes a class from the Classes page');
  await page.getByRole('navigation').getByRole('link', { name: 'Classes' }).click();
  await check(page, 'classes-desktop', '/classes');
  await page.getByLabel('Nom').fill('Seconde B');
  await page.getByLabel('Niveau').selectOption('B1');
  await page.getByRole('button', { name: 'Créer la classe' }).click();
  await page.getByRole('heading', { name: 'Seconde B — FR B1' }).waitFor();
  await check(page, 'class-dashboard-desktop', '/classes/');

  log('from a Moodle course: a teacher places a Penpal assignment, a learner does it and hands it in');
  const teacherCtx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-GB' });
  const teacher = await teacherCtx.newPage();
  watch(teacher);
  await teacher.goto(`${process.env.LMS_URL}/courses/c-web/launch?as=teacher`);
  await check(teacher, 'lti-pick-desktop', '/classes/');
  assert.match(new URL(teacher.url()).pathname, /\/pick$/);
  await teacher.getByText('This class has no assignments yet').waitFor();
  await teacher.getByLabel('Title').fill('Au restaurant');
  await teacher.getByLabel('Minimum turns').fill('1');
  await teacher.getByRole('button', { name: 'Create the assignment' }).click();
  await teacher.getByLabel('Au restaurant').check();
  await teacher.getByRole('button', { name: 'Add to the course' }).click();
  // penpal's page posts the signed answer back to Moodle, which lists the new item.
  await teacher.getByText('1 Penpal assignment added').waitFor();

  const learnerCtx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-GB' });
  const learner = await learnerCtx.newPage();
  watch(learner);
  await learner.goto(`${process.env.LMS_URL}/courses/c-web/launch?as=learner&item=0`);
  await check(learner, 'lti-assignment-desktop', '/assignments/');
  const assignmentUrl = learner.url();
  await learner.getByRole('heading', { name: 'Au restaurant' }).waitFor();
  await learner.getByRole('button', { name: 'Start' }).click();
  await learner.waitForURL(/\/chat\/[A-Za-z0-9_-]+$/);
  await learner.locator('.conn[data-state="online"]').waitFor();
  const task = learner.getByLabel('Your message');
  await task.fill('Bonjour, une table pour deux, s’il vous plaît.');
  await task.press('Enter');
  await learner.locator('.thread .msg.tutor:not(.streaming)').last().waitFor();
  await learner.goto(assignmentUrl);
  await learner.getByRole('button', { name: 'Hand in' }).click();
  await learner.getByRole('heading', { name: /Grade: \d+ \/ 16/ }).waitFor();
  await check(learner, 'lti-graded-desktop');

  log('the teacher, opening the placed item, lands on the class dashboard with the hand-in');
  await teacher.goto(`${process.env.LMS_URL}/courses/c-web/launch?as=teacher&item=0`);
  await check(teacher, 'lti-dashboard-desktop', '/classes/');
  const row = teacher.getByRole('row', { name: /Au restaurant/ });
  await row.waitFor();
  assert.deepEqual(await row.locator('td').allInnerTexts().then((c) => c.slice(0, 2)), ['1', '1'], 'one started, one handed in');
  await teacher.getByRole('row', { name: /Ana Lima/ }).waitFor();

  log('the teacher reads Ana\'s conversation and overrides the grade with a comment');
  await teacher.getByRole('link', { name: 'Au restaurant' }).click();
  await teacher.getByRole('heading', { name: 'Submissions' }).waitFor();
  await teacher.getByRole('button', { name: 'Ana Lima' }).click();
  await teacher.getByRole('heading', { name: 'The work of Ana Lima' }).waitFor();
  await teacher.locator('.transcript li.learner', { hasText: 'Bonjour, une table pour deux' }).waitFor();
  await check(teacher, 'lti-submission-desktop');
  const before = Number((await teacher.getByRole('heading', { name: /^Grade: \d+ \/ 16$/ }).innerText()).match(/\d+/)[0]);
  const range = teacher.getByLabel('Range');
  const expected = before + 4 - Number(await range.inputValue());
  await range.selectOption('4');
  await teacher.getByLabel('Comment for the learner').fill('Très bien, continue !');
  await teacher.getByRole('button', { name: 'Save the grade' }).click();
  await teacher.getByText(`Grade saved: ${expected} / 16.`).waitFor();
  await teacher.getByRole('row', { name: /Ana Lima/ }).getByText(`${expected} / 16`).waitFor();
  await teacherCtx.close();
  await learnerCtx.close();

  log('a page that does not exist says so');
  await page.goto(BASE + '/nowhere');
  await check(page, 'notfound-desktop');
  assert.match(await page.locator('h1').innerText(), /introuvable/);

  // ---- Phone, dark theme: every page fits 360 px and passes the same audit. ----
  log('phone size, dark theme: sign in and visit every page');
  const phone = await browser.newContext({ viewport: { width: 360, height: 780 }, locale: 'fr-FR', colorScheme: 'dark', isMobile: true, hasTouch: true });
  const mobile = await phone.newPage();
  watch(mobile);
  for (const [name, path] of [['landing', '/'], ['demo', '/demo'], ['signup', '/signup'], ['login', '/login']]) {
    await mobile.goto(BASE + path);
    await check(mobile, `${name}-phone`, path);
    assert.equal(await mobile.locator('html').getAttribute('data-theme'), 'dark');
    const overflow = await mobile.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${path} is wider than the phone by ${overflow}px`);
  }
  await mobile.goto(BASE + '/signup');
  const lea = `lea.${Date.now()}@example.com`;
  await mobile.getByLabel('Adresse e-mail').fill(lea);
  await mobile.getByLabel('Mot de passe').fill(password);
  await mobile.getByRole('button', { name: 'Créer le compte' }).click();
  await check(mobile, 'welcome-phone', '/welcome');
  await mobile.getByRole('button', { name: 'Se déconnecter' }).click();
  await mobile.waitForURL((u) => u.pathname === '/');

  log('a forgotten password, reset through the mailed link');
  await mobile.goto(BASE + '/login');
  await mobile.getByRole('link', { name: 'Mot de passe oublié ?' }).click();
  await check(mobile, 'forgot-phone', '/forgot-password');
  await mobile.getByLabel('Adresse e-mail').fill(lea);
  await mobile.getByRole('button', { name: 'Envoyer le lien' }).click();
  await mobile.getByText('Si un compte a cette adresse').waitFor();
  await mobile.goto(await mailedLink(lea, 'reset-password'));
  await check(mobile, 'reset-phone', '/reset-password');
  await mobile.getByLabel('Nouveau mot de passe').fill('a brand new staple');
  await mobile.getByRole('button', { name: 'Enregistrer le nouveau mot de passe' }).click();
  await mobile.getByText('Votre mot de passe est changé').waitFor();
  await mobile.goto(BASE + '/login');
  await mobile.getByLabel('Adresse e-mail').fill(lea);
  await mobile.getByLabel('Mot de passe').fill('a brand new staple');
  await mobile.getByRole('button', { name: 'Se connecter' }).click();
  await mobile.waitForURL((u) => u.pathname === '/welcome');
  await mobile.getByRole('button', { name: 'Se déconnecter' }).click();
  await mobile.waitForURL((u) => u.pathname === '/');

  await mobile.goto(BASE + '/login');
  await mobile.getByLabel('Adresse e-mail').fill(email);
  await mobile.getByLabel('Mot de passe').fill(password);
  await mobile.getByRole('button', { name: 'Se connecter' }).click();
  await mobile.waitForURL((u) => u.pathname === '/chat');
  for (const [name, path] of [['chat-new', '/chat'], ['chat', new URL(convUrl).pathname], ['progress', '/progress'], ['review', '/review'], ['settings', '/settings']]) {
    await mobile.goto(BASE + path);
    await check(mobile, `${name}-phone`, path);
    const overflow = await mobile.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${path} is wider than the phone by ${overflow}px`);
  }

  log('signing out ends the session');
  await mobile.getByRole('button', { name: 'Se déconnecter' }).click();
  await mobile.waitForURL((u) => u.pathname === '/');
  await mobile.goto(BASE + '/progress');
  await mobile.waitForURL((u) => u.pathname === '/login');
  await mobile.goto(BASE + '/nowhere');
  await check(mobile, 'notfound-phone');

  log('settings: a new email address, confirmed through the link mailed to it');
  await page.goto(BASE + '/settings');
  const newEmail = `new.${email}`;
  const emailCard = page.locator('form', { has: page.getByRole('heading', { name: 'Adresse e-mail' }) });
  await emailCard.getByLabel('Nouvelle adresse').fill(newEmail);
  await emailCard.getByLabel('Mot de passe').fill(password);
  await emailCard.getByRole('button', { name: 'Changer mon adresse' }).click();
  await emailCard.getByText('Nous avons envoyé un lien').waitFor();
  await page.goto(await mailedLink(newEmail, 'verify-email'));
  await page.getByText('votre adresse e-mail est confirmée').waitFor();
  await page.goto(BASE + '/settings');
  await page.getByText(`Votre compte utilise ${newEmail}.`).waitFor();

  log('deleting the account, asked twice, ends everything');
  page.once('dialog', (d) => d.accept());
  await page.goto(BASE + '/settings');
  await page.locator('main h1').waitFor();
  await page.locator('form.danger').getByLabel('Mot de passe').fill(password);
  await page.getByRole('button', { name: 'Supprimer mon compte' }).click();
  await page.waitForURL((u) => u.pathname === '/');
  await page.getByText('Votre compte a été supprimé.').waitFor();
  await page.goto(BASE + '/login');
  await page.getByLabel('Adresse e-mail').fill(email);
  await page.getByLabel('Mot de passe').fill(password);
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await page.getByRole('alert').filter({ hasText: /wrong email or password/ }).waitFor();
});

//! Versioned schema migrations, applied in order at start-up and recorded in `migration`.
//!
//! A migration is never edited once released: a change to the schema is a new entry. Each one
//! runs in a transaction together with its record, so a crash leaves it either applied and
//! recorded or neither.

use serde::Deserialize;
use serde_json::json;

use super::{Db, StoreError, StoreResult, now_ms};

/// Every migration: (version, name, SurrealQL).
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "learners", V1),
    (2, "keyed-rows", V2),
    (3, "ticket-session", V3),
    (4, "estimated-usage", V4),
    (5, "plugin-usage", V5),
    (6, "notifications", V6),
    (7, "notification-preferences", V7),
    (8, "scheduled-and-security-mail", V8),
    (9, "entitlements", V9),
    (10, "subscriptions", V10),
    (11, "coupons", V11),
    (12, "invoices", V12),
    (13, "schools", V13),
    (14, "classes-and-assignments", V14),
    (15, "lti", V15),
    (16, "lti-accounts-per-school", V16),
    (17, "school-sign-in", V17),
    (18, "marketplace-registry", V18),
    (19, "marketplace-installs", V19),
    (20, "publish-tokens", V20),
    (21, "school-installs", V21),
];

const V1: &str = r#"
DEFINE TABLE user SCHEMAFULL;
DEFINE FIELD email ON user TYPE string ASSERT string::is_email($value);
DEFINE FIELD password_hash ON user TYPE string;
DEFINE FIELD role ON user TYPE string ASSERT $value INSIDE ['learner', 'teacher', 'school_admin', 'operator'];
DEFINE FIELD created_at ON user TYPE int;
DEFINE FIELD password_changed_at ON user TYPE int;
DEFINE FIELD profile ON user TYPE object FLEXIBLE;
DEFINE INDEX user_email ON user FIELDS email UNIQUE;

DEFINE TABLE refresh_token SCHEMAFULL;
DEFINE FIELD user ON refresh_token TYPE string;
DEFINE FIELD family ON refresh_token TYPE string;
DEFINE FIELD created_at ON refresh_token TYPE int;
DEFINE FIELD expires_at ON refresh_token TYPE int;
DEFINE FIELD used_at ON refresh_token TYPE option<int>;
DEFINE FIELD revoked ON refresh_token TYPE bool;
DEFINE INDEX refresh_family ON refresh_token FIELDS family;
DEFINE INDEX refresh_user ON refresh_token FIELDS user;

DEFINE TABLE live_ticket SCHEMAFULL;
DEFINE FIELD user ON live_ticket TYPE string;
DEFINE FIELD conversation ON live_ticket TYPE string;
DEFINE FIELD expires_at ON live_ticket TYPE int;

DEFINE TABLE conversation SCHEMAFULL;
DEFINE FIELD user ON conversation TYPE string;
DEFINE FIELD title ON conversation TYPE string ASSERT string::len($value) <= 200;
DEFINE FIELD personality ON conversation TYPE string;
DEFINE FIELD mode ON conversation TYPE string ASSERT $value INSIDE ['tutor', 'conversation', 'role-play'];
DEFINE FIELD language ON conversation TYPE string;
DEFINE FIELD scenario ON conversation TYPE option<string>;
DEFINE FIELD topic ON conversation TYPE option<string>;
DEFINE FIELD archived ON conversation TYPE bool;
DEFINE FIELD created_at ON conversation TYPE int;
DEFINE FIELD updated_at ON conversation TYPE int;
DEFINE FIELD last_seq ON conversation TYPE int;
DEFINE FIELD turns ON conversation TYPE int;
DEFINE FIELD summary ON conversation TYPE option<string>;
DEFINE FIELD summary_upto ON conversation TYPE int;
DEFINE FIELD pinned ON conversation TYPE array<string>;
DEFINE INDEX conversation_user ON conversation FIELDS user, updated_at;

DEFINE TABLE message SCHEMAFULL;
DEFINE FIELD conversation ON message TYPE string;
DEFINE FIELD user ON message TYPE string;
DEFINE FIELD seq ON message TYPE int;
DEFINE FIELD role ON message TYPE string ASSERT $value INSIDE ['learner', 'tutor'];
DEFINE FIELD text ON message TYPE string;
DEFINE FIELD created_at ON message TYPE int;
DEFINE FIELD status ON message TYPE string ASSERT $value INSIDE ['pending', 'answered', 'failed', 'ok'];
DEFINE FIELD corrections ON message TYPE array<object> FLEXIBLE;
DEFINE FIELD vocabulary ON message TYPE array<object> FLEXIBLE;
DEFINE FIELD debrief ON message TYPE option<string>;
DEFINE FIELD error ON message TYPE option<string>;
DEFINE INDEX message_seq ON message FIELDS conversation, seq UNIQUE;
DEFINE INDEX message_user ON message FIELDS user;

DEFINE TABLE vocab SCHEMAFULL;
DEFINE FIELD user ON vocab TYPE string;
DEFINE FIELD language ON vocab TYPE string;
DEFINE FIELD term ON vocab TYPE string;
DEFINE FIELD translation ON vocab TYPE string;
DEFINE FIELD example ON vocab TYPE option<string>;
DEFINE FIELD conversation ON vocab TYPE option<string>;
DEFINE FIELD added_at ON vocab TYPE int;
DEFINE FIELD due_at ON vocab TYPE int;
DEFINE FIELD interval_days ON vocab TYPE float;
DEFINE FIELD ease ON vocab TYPE float;
DEFINE FIELD reps ON vocab TYPE int;
DEFINE FIELD lapses ON vocab TYPE int;
DEFINE FIELD last_review ON vocab TYPE option<int>;
DEFINE INDEX vocab_term ON vocab FIELDS user, language, term UNIQUE;
DEFINE INDEX vocab_due ON vocab FIELDS user, due_at;

DEFINE TABLE turn_stat SCHEMAFULL;
DEFINE FIELD user ON turn_stat TYPE string;
DEFINE FIELD conversation ON turn_stat TYPE string;
DEFINE FIELD language ON turn_stat TYPE string;
DEFINE FIELD at ON turn_stat TYPE int;
DEFINE FIELD words ON turn_stat TYPE int;
DEFINE FIELD errors ON turn_stat TYPE int;
DEFINE FIELD categories ON turn_stat TYPE object FLEXIBLE;
DEFINE FIELD observed ON turn_stat TYPE option<string>;
DEFINE FIELD confidence ON turn_stat TYPE option<float>;
DEFINE INDEX turn_stat_user ON turn_stat FIELDS user, at;

DEFINE TABLE usage SCHEMAFULL;
DEFINE FIELD user ON usage TYPE option<string>;
DEFINE FIELD conversation ON usage TYPE option<string>;
DEFINE FIELD at ON usage TYPE int;
DEFINE FIELD model ON usage TYPE string;
DEFINE FIELD purpose ON usage TYPE string;
DEFINE FIELD prompt_tokens ON usage TYPE int;
DEFINE FIELD completion_tokens ON usage TYPE int;
DEFINE FIELD cost_micros ON usage TYPE int;
DEFINE INDEX usage_user ON usage FIELDS user;
DEFINE INDEX usage_conversation ON usage FIELDS conversation;

DEFINE TABLE plugin_kv SCHEMAFULL;
DEFINE FIELD ns ON plugin_kv TYPE string;
DEFINE FIELD key ON plugin_kv TYPE string;
DEFINE FIELD value ON plugin_kv TYPE string;
DEFINE INDEX plugin_kv_key ON plugin_kv FIELDS ns, key UNIQUE;
"#;

/// Rows written on every turn are keyed by their owner instead of indexed: a secondary index
/// makes concurrent creates contend inside the store (about 50 times slower with a hundred
/// conversations), while a record range over an array id is a plain ordered scan.
///
/// - `message:[conversation, seq]`: seq is dense per conversation, so windows are exact ranges.
/// - `turn_stat:[user, at, id]` and `usage:[user or '', at, id]`: a learner's rows in time order.
/// - `vocab:[user, language, term]`: one card per word, so adding words is `INSERT IGNORE`.
const V2: &str = r#"
REMOVE INDEX vocab_term ON vocab;
REMOVE INDEX vocab_due ON vocab;
LET $cards = SELECT * FROM vocab;
DELETE vocab;
FOR $v IN $cards {
    CREATE type::record('vocab', [$v.user, $v.language, $v.term])
        CONTENT $v.{user, language, term, translation, example, conversation, added_at, due_at,
                    interval_days, ease, reps, lapses, last_review};
};

REMOVE INDEX message_seq ON message;
REMOVE INDEX message_user ON message;
LET $messages = SELECT * FROM message;
DELETE message;
FOR $m IN $messages {
    CREATE type::record('message', [$m.conversation, $m.seq])
        CONTENT $m.{conversation, user, seq, role, text, created_at, status, corrections, vocabulary, debrief, error};
};

REMOVE INDEX turn_stat_user ON turn_stat;
LET $stats = SELECT * FROM turn_stat;
DELETE turn_stat;
FOR $s IN $stats {
    CREATE type::record('turn_stat', [$s.user, $s.at, record::id($s.id)])
        CONTENT $s.{user, conversation, language, at, words, errors, categories, observed, confidence};
};

REMOVE INDEX usage_user ON usage;
REMOVE INDEX usage_conversation ON usage;
LET $usage = SELECT * FROM usage;
DELETE usage;
FOR $x IN $usage {
    CREATE type::record('usage', [$x.user ?? '', $x.at, record::id($x.id)])
        CONTENT $x.{user, conversation, at, model, purpose, prompt_tokens, completion_tokens, cost_micros};
};
"#;

/// A live ticket remembers the session it was issued in, so the socket it opens closes when
/// that session ends.
const V3: &str = r#"
DEFINE FIELD family ON live_ticket TYPE option<string>;
"#;

/// Usage counted by penpal (the server reported none) is marked as an estimate.
const V4: &str = r#"
DEFINE FIELD estimated ON usage TYPE bool DEFAULT false;
"#;

/// Model calls a plugin made through its `llm` capability are metered under its name.
const V5: &str = r#"
DEFINE FIELD plugin ON usage TYPE option<string>;
"#;

/// Email verification, account recovery and the outbox that delivers them.
const V6: &str = r#"
DEFINE FIELD email_verified_at ON user TYPE option<int>;

DEFINE TABLE account_token SCHEMAFULL;
DEFINE FIELD user ON account_token TYPE string;
DEFINE FIELD purpose ON account_token TYPE string ASSERT $value INSIDE ['verify_email', 'reset_password'];
DEFINE FIELD email ON account_token TYPE string;
DEFINE FIELD created_at ON account_token TYPE int;
DEFINE FIELD expires_at ON account_token TYPE int;
DEFINE FIELD used_at ON account_token TYPE option<int>;
DEFINE INDEX account_token_user ON account_token FIELDS user;

DEFINE TABLE outbox SCHEMAFULL;
DEFINE FIELD template ON outbox TYPE string;
DEFINE FIELD category ON outbox TYPE string ASSERT $value INSIDE ['security', 'account', 'progress', 'marketing'];
DEFINE FIELD user ON outbox TYPE option<string>;
DEFINE FIELD to ON outbox TYPE string;
DEFINE FIELD lang ON outbox TYPE string;
DEFINE FIELD vars ON outbox TYPE object FLEXIBLE;
DEFINE FIELD channel ON outbox TYPE string;
DEFINE FIELD status ON outbox TYPE string ASSERT $value INSIDE ['pending', 'sent', 'failed'];
DEFINE FIELD attempts ON outbox TYPE int;
DEFINE FIELD next_at ON outbox TYPE int;
DEFINE FIELD lease_until ON outbox TYPE int;
DEFINE FIELD lease_owner ON outbox TYPE option<string>;
DEFINE FIELD last_error ON outbox TYPE option<string>;
DEFINE FIELD created_at ON outbox TYPE int;
DEFINE FIELD sent_at ON outbox TYPE option<int>;
DEFINE INDEX outbox_due ON outbox FIELDS status, next_at;
DEFINE INDEX outbox_user ON outbox FIELDS user;
"#;

/// What each learner lets penpal send them, when, and in which time zone; school mail; and
/// messages a learner turned off (`skipped`).
const V7: &str = r#"
DEFINE FIELD time_zone ON user TYPE option<string>;

DEFINE FIELD OVERWRITE category ON outbox TYPE string ASSERT $value INSIDE ['security', 'account', 'progress', 'marketing', 'school'];
DEFINE FIELD OVERWRITE status ON outbox TYPE string ASSERT $value INSIDE ['pending', 'sent', 'failed', 'skipped'];

DEFINE TABLE notify_pref SCHEMAFULL;
DEFINE FIELD channels ON notify_pref TYPE object FLEXIBLE;
DEFINE FIELD quiet_start ON notify_pref TYPE option<int> ASSERT $value = NONE OR ($value >= 0 AND $value < 1440);
DEFINE FIELD quiet_end ON notify_pref TYPE option<int> ASSERT $value = NONE OR ($value >= 0 AND $value < 1440);
DEFINE FIELD hour ON notify_pref TYPE int ASSERT $value >= 0 AND $value < 24;
DEFINE FIELD updated_at ON notify_pref TYPE int;
"#;

/// The digest's weekday; scheduled messages sent once (`notify_once`); the devices an account
/// signed in from; changing the account's address.
const V8: &str = r#"
DEFINE FIELD digest_day ON notify_pref TYPE option<int> ASSERT $value = NONE OR ($value >= 0 AND $value < 7);

DEFINE TABLE notify_once SCHEMAFULL;
DEFINE FIELD user ON notify_once TYPE string;
DEFINE FIELD at ON notify_once TYPE int;
DEFINE INDEX notify_once_user ON notify_once FIELDS user;
DEFINE INDEX notify_once_at ON notify_once FIELDS at;

DEFINE TABLE known_device SCHEMAFULL;
DEFINE FIELD user ON known_device TYPE string;
DEFINE FIELD first_seen ON known_device TYPE int;
DEFINE FIELD last_seen ON known_device TYPE int;
DEFINE INDEX known_device_user ON known_device FIELDS user;

DEFINE FIELD OVERWRITE purpose ON account_token TYPE string ASSERT $value INSIDE ['verify_email', 'reset_password', 'change_email'];
"#;

/// Plans granted to accounts: by a subscription, an operator or a school.
const V9: &str = r#"
DEFINE TABLE entitlement SCHEMAFULL;
DEFINE FIELD user ON entitlement TYPE string;
DEFINE FIELD plan ON entitlement TYPE string;
DEFINE FIELD source ON entitlement TYPE string ASSERT $value INSIDE ['subscription', 'complimentary', 'school'];
DEFINE FIELD reference ON entitlement TYPE string;
DEFINE FIELD until ON entitlement TYPE option<int>;
DEFINE FIELD created_at ON entitlement TYPE int;
DEFINE INDEX entitlement_user ON entitlement FIELDS user;
"#;

/// Payment providers' events (stored before they are applied), the subscriptions they move,
/// and each account's customer id at each provider.
const V10: &str = r#"
DEFINE TABLE billing_event SCHEMAFULL;
DEFINE FIELD provider ON billing_event TYPE string;
DEFINE FIELD event_id ON billing_event TYPE string;
DEFINE FIELD kind ON billing_event TYPE string;
DEFINE FIELD provider_type ON billing_event TYPE string;
DEFINE FIELD user ON billing_event TYPE option<string>;
DEFINE FIELD event ON billing_event TYPE object FLEXIBLE;
DEFINE FIELD status ON billing_event TYPE string ASSERT $value INSIDE ['received', 'applied', 'ignored', 'failed'];
DEFINE FIELD error ON billing_event TYPE option<string>;
DEFINE FIELD occurred_at ON billing_event TYPE int;
DEFINE FIELD received_at ON billing_event TYPE int;
DEFINE FIELD applied_at ON billing_event TYPE option<int>;
DEFINE INDEX billing_event_status ON billing_event FIELDS status, received_at;
DEFINE INDEX billing_event_user ON billing_event FIELDS user;

DEFINE TABLE subscription SCHEMAFULL;
DEFINE FIELD user ON subscription TYPE string;
DEFINE FIELD provider ON subscription TYPE string;
DEFINE FIELD provider_id ON subscription TYPE string;
DEFINE FIELD status ON subscription TYPE string;
DEFINE FIELD plan ON subscription TYPE option<string>;
DEFINE FIELD period_end ON subscription TYPE option<int>;
DEFINE FIELD trial_end ON subscription TYPE option<int>;
DEFINE FIELD cancel_at_period_end ON subscription TYPE bool;
DEFINE FIELD as_of ON subscription TYPE int;
DEFINE FIELD updated_at ON subscription TYPE int;
DEFINE INDEX subscription_user ON subscription FIELDS user;

DEFINE TABLE billing_customer SCHEMAFULL;
DEFINE FIELD user ON billing_customer TYPE string;
DEFINE FIELD provider ON billing_customer TYPE string;
DEFINE FIELD customer ON billing_customer TYPE string;
DEFINE INDEX billing_customer_user ON billing_customer FIELDS user;
DEFINE INDEX billing_customer_at ON billing_customer FIELDS provider, customer UNIQUE;
"#;

/// Coupons and who used them.
const V11: &str = r#"
DEFINE TABLE coupon SCHEMAFULL;
DEFINE FIELD spec ON coupon TYPE object FLEXIBLE;
DEFINE FIELD redeemed ON coupon TYPE int ASSERT $value >= 0;
DEFINE FIELD created_at ON coupon TYPE int;

DEFINE TABLE coupon_redemption SCHEMAFULL;
DEFINE FIELD code ON coupon_redemption TYPE string;
DEFINE FIELD user ON coupon_redemption TYPE string;
DEFINE FIELD plan ON coupon_redemption TYPE string;
DEFINE FIELD at ON coupon_redemption TYPE int;
DEFINE INDEX coupon_redemption_user ON coupon_redemption FIELDS code, user;
"#;

/// What accounts paid, with refunds and disputes against each payment and the tax in it; the
/// country each account pays from; coupon uses confirmed by a completed checkout.
const V12: &str = r#"
DEFINE TABLE invoice SCHEMAFULL;
DEFINE FIELD user ON invoice TYPE string;
DEFINE FIELD provider ON invoice TYPE string;
DEFINE FIELD payment_id ON invoice TYPE string;
DEFINE FIELD subscription ON invoice TYPE option<string>;
DEFINE FIELD plan ON invoice TYPE option<string>;
DEFINE FIELD amount_minor ON invoice TYPE int ASSERT $value >= 0;
DEFINE FIELD currency ON invoice TYPE string;
DEFINE FIELD refunded_minor ON invoice TYPE int ASSERT $value >= 0;
DEFINE FIELD status ON invoice TYPE string ASSERT $value INSIDE ['paid', 'partially_refunded', 'refunded'];
DEFINE FIELD dispute ON invoice TYPE option<object> FLEXIBLE;
DEFINE FIELD tax ON invoice TYPE option<object> FLEXIBLE;
DEFINE FIELD paid_at ON invoice TYPE int;
DEFINE INDEX invoice_user ON invoice FIELDS user, paid_at;

DEFINE FIELD confirmed ON coupon_redemption TYPE option<bool>;

DEFINE TABLE billing_account SCHEMAFULL;
DEFINE FIELD user ON billing_account TYPE string;
DEFINE FIELD country ON billing_account TYPE option<string>;
DEFINE FIELD updated_at ON billing_account TYPE int;
"#;

/// Schools as tenants: their members and roles, and invitations (hashed, expiring, counted).
const V13: &str = r#"
DEFINE TABLE school SCHEMAFULL;
DEFINE FIELD name ON school TYPE string;
DEFINE FIELD seats ON school TYPE int ASSERT $value >= 0;
DEFINE FIELD plan ON school TYPE option<string>;
DEFINE FIELD created_at ON school TYPE int;
DEFINE FIELD created_by ON school TYPE string;

DEFINE TABLE membership SCHEMAFULL;
DEFINE FIELD school ON membership TYPE string;
DEFINE FIELD user ON membership TYPE string;
DEFINE FIELD role ON membership TYPE string ASSERT $value INSIDE ['admin', 'teacher', 'learner'];
DEFINE FIELD joined_at ON membership TYPE int;
DEFINE INDEX membership_user ON membership FIELDS user;
DEFINE INDEX membership_school ON membership FIELDS school, role;

DEFINE TABLE school_invitation SCHEMAFULL;
DEFINE FIELD school ON school_invitation TYPE string;
DEFINE FIELD token_hash ON school_invitation TYPE string;
DEFINE FIELD role ON school_invitation TYPE string ASSERT $value INSIDE ['admin', 'teacher', 'learner'];
DEFINE FIELD email ON school_invitation TYPE option<string>;
DEFINE FIELD max_uses ON school_invitation TYPE int ASSERT $value >= 1;
DEFINE FIELD uses ON school_invitation TYPE int ASSERT $value >= 0 AND $value <= max_uses;
DEFINE FIELD expires_at ON school_invitation TYPE int;
DEFINE FIELD created_by ON school_invitation TYPE string;
DEFINE FIELD created_at ON school_invitation TYPE int;
DEFINE INDEX school_invitation_token ON school_invitation FIELDS token_hash UNIQUE;
DEFINE INDEX school_invitation_school ON school_invitation FIELDS school;
"#;

/// Classes, their members, assignments and submissions with their grades; a conversation may
/// run at a level set by its assignment.
const V14: &str = r#"
DEFINE FIELD level ON conversation TYPE option<string> ASSERT $value = NONE OR $value INSIDE ['A1', 'A2', 'B1', 'B2', 'C1', 'C2'];

DEFINE TABLE class SCHEMAFULL;
DEFINE FIELD school ON class TYPE string;
DEFINE FIELD name ON class TYPE string;
DEFINE FIELD language ON class TYPE string;
DEFINE FIELD level ON class TYPE string ASSERT $value INSIDE ['A1', 'A2', 'B1', 'B2', 'C1', 'C2'];
DEFINE FIELD archived ON class TYPE bool;
DEFINE FIELD created_at ON class TYPE int;
DEFINE FIELD created_by ON class TYPE string;
DEFINE INDEX class_school ON class FIELDS school, created_at;

DEFINE TABLE class_member SCHEMAFULL;
DEFINE FIELD class ON class_member TYPE string;
DEFINE FIELD school ON class_member TYPE string;
DEFINE FIELD user ON class_member TYPE string;
DEFINE FIELD role ON class_member TYPE string ASSERT $value INSIDE ['teacher', 'learner'];
DEFINE FIELD added_at ON class_member TYPE int;
DEFINE INDEX class_member_class ON class_member FIELDS class, role;
DEFINE INDEX class_member_user ON class_member FIELDS user, school;

DEFINE TABLE assignment SCHEMAFULL;
DEFINE FIELD class ON assignment TYPE string;
DEFINE FIELD school ON assignment TYPE string;
DEFINE FIELD title ON assignment TYPE string;
DEFINE FIELD instructions ON assignment TYPE option<string>;
DEFINE FIELD mode ON assignment TYPE string ASSERT $value INSIDE ['tutor', 'conversation', 'role-play'];
DEFINE FIELD personality ON assignment TYPE string;
DEFINE FIELD scenario ON assignment TYPE option<string>;
DEFINE FIELD topic ON assignment TYPE option<string>;
DEFINE FIELD level ON assignment TYPE string ASSERT $value INSIDE ['A1', 'A2', 'B1', 'B2', 'C1', 'C2'];
DEFINE FIELD min_turns ON assignment TYPE int ASSERT $value >= 1 AND $value <= 100;
DEFINE FIELD due_at ON assignment TYPE option<int>;
DEFINE FIELD created_at ON assignment TYPE int;
DEFINE FIELD created_by ON assignment TYPE string;
DEFINE INDEX assignment_class ON assignment FIELDS class, created_at;

DEFINE TABLE submission SCHEMAFULL;
DEFINE FIELD assignment ON submission TYPE string;
DEFINE FIELD class ON submission TYPE string;
DEFINE FIELD school ON submission TYPE string;
DEFINE FIELD user ON submission TYPE string;
DEFINE FIELD conversation ON submission TYPE string;
DEFINE FIELD status ON submission TYPE string ASSERT $value INSIDE ['started', 'submitted', 'graded'];
DEFINE FIELD started_at ON submission TYPE int;
DEFINE FIELD submitted_at ON submission TYPE option<int>;
DEFINE FIELD submitted_seq ON submission TYPE option<int>;
DEFINE FIELD turns ON submission TYPE option<int>;
DEFINE FIELD late ON submission TYPE bool;
DEFINE FIELD auto ON submission TYPE option<object> FLEXIBLE;
DEFINE FIELD grade ON submission TYPE option<object> FLEXIBLE;
DEFINE INDEX submission_one ON submission FIELDS assignment, user UNIQUE;
DEFINE INDEX submission_user ON submission FIELDS user;
DEFINE INDEX submission_class ON submission FIELDS class, status;
"#;

/// LTI 1.3: the tool's sealed keys, platforms schools register, login states, who is who on
/// each platform, courses as classes, line items and the queue of scores to send; one-time
/// hand-off codes that start a browser session.
const V15: &str = r#"
DEFINE TABLE lti_key SCHEMAFULL;
DEFINE FIELD kid ON lti_key TYPE string;
DEFINE FIELD sealed ON lti_key TYPE string;
DEFINE FIELD active ON lti_key TYPE bool;
DEFINE FIELD created_at ON lti_key TYPE int;
DEFINE FIELD retired_at ON lti_key TYPE option<int>;

DEFINE TABLE lti_platform SCHEMAFULL;
DEFINE FIELD school ON lti_platform TYPE string;
DEFINE FIELD name ON lti_platform TYPE string;
DEFINE FIELD plugin ON lti_platform TYPE string;
DEFINE FIELD issuer ON lti_platform TYPE string;
DEFINE FIELD client_id ON lti_platform TYPE string;
DEFINE FIELD deployment_ids ON lti_platform TYPE array<string>;
DEFINE FIELD auth_url ON lti_platform TYPE string;
DEFINE FIELD token_url ON lti_platform TYPE string;
DEFINE FIELD jwks_url ON lti_platform TYPE string;
DEFINE FIELD created_at ON lti_platform TYPE int;
DEFINE INDEX lti_platform_client ON lti_platform FIELDS issuer, client_id UNIQUE;
DEFINE INDEX lti_platform_school ON lti_platform FIELDS school;

DEFINE TABLE lti_state SCHEMAFULL;
DEFINE FIELD platform ON lti_state TYPE string;
DEFINE FIELD nonce ON lti_state TYPE string;
DEFINE FIELD target ON lti_state TYPE string;
DEFINE FIELD expires_at ON lti_state TYPE int;

DEFINE TABLE lti_user SCHEMAFULL;
DEFINE FIELD issuer ON lti_user TYPE string;
DEFINE FIELD sub ON lti_user TYPE string;
DEFINE FIELD user ON lti_user TYPE string;
DEFINE FIELD created_at ON lti_user TYPE int;
DEFINE INDEX lti_user_user ON lti_user FIELDS user;

DEFINE TABLE lti_context SCHEMAFULL;
DEFINE FIELD platform ON lti_context TYPE string;
DEFINE FIELD context_id ON lti_context TYPE string;
DEFINE FIELD class ON lti_context TYPE string;
DEFINE FIELD memberships_url ON lti_context TYPE option<string>;
DEFINE FIELD line_items_url ON lti_context TYPE option<string>;

DEFINE TABLE lti_line_item SCHEMAFULL;
DEFINE FIELD url ON lti_line_item TYPE string;

DEFINE TABLE lti_score SCHEMAFULL;
DEFINE FIELD platform ON lti_score TYPE string;
DEFINE FIELD line_items_url ON lti_score TYPE string;
DEFINE FIELD user_sub ON lti_score TYPE string;
DEFINE FIELD assignment ON lti_score TYPE string;
DEFINE FIELD title ON lti_score TYPE string;
DEFINE FIELD score ON lti_score TYPE number;
DEFINE FIELD max ON lti_score TYPE number;
DEFINE FIELD comment ON lti_score TYPE option<string>;
DEFINE FIELD grading ON lti_score TYPE string ASSERT $value INSIDE ['pending-manual', 'fully-graded'];
DEFINE FIELD at ON lti_score TYPE int;
DEFINE FIELD status ON lti_score TYPE string ASSERT $value INSIDE ['pending', 'sent', 'failed'];
DEFINE FIELD attempts ON lti_score TYPE int;
DEFINE FIELD next_at ON lti_score TYPE int;
DEFINE FIELD lease_until ON lti_score TYPE option<int>;
DEFINE FIELD last_error ON lti_score TYPE option<string>;
DEFINE FIELD sent_at ON lti_score TYPE option<int>;
DEFINE INDEX lti_score_due ON lti_score FIELDS status, next_at;

DEFINE TABLE handoff_code SCHEMAFULL;
DEFINE FIELD user ON handoff_code TYPE string;
DEFINE FIELD expires_at ON handoff_code TYPE int;
"#;

/// A platform account is trusted only by the school whose platform linked it: Canvas and
/// Blackboard give every instance one issuer, so (issuer, `sub`) alone let another school's
/// registration reach it. Each link moves under the schools it was used in. Dynamic
/// Registration links (hashed, single use), teachers' deep-linking picks and their signed
/// answers on the way back; the LMS origin that may frame the page a hand-off code opens.
const V16: &str = r#"
DEFINE TABLE lti_registration SCHEMAFULL;
DEFINE FIELD school ON lti_registration TYPE string;
DEFINE FIELD plugin ON lti_registration TYPE option<string>;
DEFINE FIELD created_by ON lti_registration TYPE string;
DEFINE FIELD created_at ON lti_registration TYPE int;
DEFINE FIELD expires_at ON lti_registration TYPE int;

DEFINE TABLE lti_deep_link SCHEMAFULL;
DEFINE FIELD platform ON lti_deep_link TYPE string;
DEFINE FIELD user ON lti_deep_link TYPE string;
DEFINE FIELD class ON lti_deep_link TYPE string;
DEFINE FIELD return_url ON lti_deep_link TYPE string;
DEFINE FIELD data ON lti_deep_link TYPE option<string>;
DEFINE FIELD accept_multiple ON lti_deep_link TYPE bool;
DEFINE FIELD deployment_id ON lti_deep_link TYPE string;
DEFINE FIELD expires_at ON lti_deep_link TYPE int;

DEFINE TABLE lti_return SCHEMAFULL;
DEFINE FIELD return_url ON lti_return TYPE string;
DEFINE FIELD jwt ON lti_return TYPE string;
DEFINE FIELD expires_at ON lti_return TYPE int;

DEFINE FIELD frame ON handoff_code TYPE option<string>;

DEFINE FIELD school ON lti_user TYPE string;
DEFINE INDEX lti_user_user_school ON lti_user FIELDS user, school;
FOR $l IN (SELECT * FROM lti_user) {
    FOR $s IN (SELECT VALUE school FROM membership WHERE user = $l.user
               AND school IN (SELECT VALUE school FROM lti_platform WHERE issuer = $l.issuer)) {
        CREATE type::record('lti_user', [$s, $l.issuer, $l.sub])
            CONTENT { school: $s, issuer: $l.issuer, sub: $l.sub, user: $l.user, created_at: $l.created_at };
    };
    DELETE $l.id;
};
"#;

/// Schools' own sign-in (OpenID Connect): the provider each school set, with its client
/// secret sealed; the address domains that lead to it (one school each); logins on their way
/// (state hashed, single use) with their nonce and PKCE verifier.
const V17: &str = r#"
DEFINE TABLE school_sso SCHEMAFULL;
DEFINE FIELD issuer ON school_sso TYPE string;
DEFINE FIELD client_id ON school_sso TYPE string;
DEFINE FIELD secret_sealed ON school_sso TYPE string;
DEFINE FIELD auth_method ON school_sso TYPE string ASSERT $value INSIDE ['client_secret_basic', 'client_secret_post'];
DEFINE FIELD auth_url ON school_sso TYPE string;
DEFINE FIELD token_url ON school_sso TYPE string;
DEFINE FIELD jwks_url ON school_sso TYPE string;
DEFINE FIELD domains ON school_sso TYPE array<string>;
DEFINE FIELD updated_at ON school_sso TYPE int;
DEFINE FIELD updated_by ON school_sso TYPE string;

DEFINE TABLE sso_domain SCHEMAFULL;
DEFINE FIELD school ON sso_domain TYPE string;
DEFINE INDEX sso_domain_school ON sso_domain FIELDS school;

DEFINE TABLE sso_state SCHEMAFULL;
DEFINE FIELD school ON sso_state TYPE string;
DEFINE FIELD nonce ON sso_state TYPE string;
DEFINE FIELD verifier ON sso_state TYPE string;
DEFINE FIELD next ON sso_state TYPE string;
DEFINE FIELD expires_at ON sso_state TYPE int;
"#;

/// The marketplace's registry: publishers (one per account) and their signing keys, packages
/// (a name claimed by its first publish) and their versions, and content stored by its
/// SHA-256 in chunks, so every node sharing the database serves the same bytes.
const V18: &str = r#"
DEFINE TABLE publisher SCHEMAFULL;
DEFINE FIELD owner ON publisher TYPE string;
DEFINE FIELD name ON publisher TYPE string;
DEFINE FIELD created_at ON publisher TYPE int;
DEFINE INDEX publisher_owner ON publisher FIELDS owner UNIQUE;

DEFINE TABLE publisher_key SCHEMAFULL;
DEFINE FIELD publisher ON publisher_key TYPE string;
DEFINE FIELD public_key ON publisher_key TYPE string;
DEFINE FIELD label ON publisher_key TYPE string;
DEFINE FIELD created_at ON publisher_key TYPE int;
DEFINE FIELD revoked_at ON publisher_key TYPE option<int>;
DEFINE INDEX publisher_key_publisher ON publisher_key FIELDS publisher;

DEFINE TABLE package SCHEMAFULL;
DEFINE FIELD publisher ON package TYPE string;
DEFINE FIELD kind ON package TYPE string;
DEFINE FIELD display_name ON package TYPE string;
DEFINE FIELD description ON package TYPE string;
DEFINE FIELD languages ON package TYPE array<string>;
DEFINE FIELD levels ON package TYPE array<string>;
DEFINE FIELD latest ON package TYPE string;
DEFINE FIELD downloads ON package TYPE int;
DEFINE FIELD created_at ON package TYPE int;
DEFINE FIELD updated_at ON package TYPE int;
DEFINE INDEX package_publisher ON package FIELDS publisher;

DEFINE TABLE package_version SCHEMAFULL;
DEFINE FIELD package ON package_version TYPE string;
DEFINE FIELD version ON package_version TYPE string;
DEFINE FIELD manifest ON package_version TYPE string;
DEFINE FIELD archive ON package_version TYPE string;
DEFINE FIELD component ON package_version TYPE string;
DEFINE FIELD size ON package_version TYPE int;
DEFINE FIELD key ON package_version TYPE string;
DEFINE FIELD wit ON package_version TYPE string;
DEFINE FIELD requested ON package_version TYPE object FLEXIBLE;
DEFINE FIELD readme ON package_version TYPE option<string>;
DEFINE FIELD screenshots ON package_version TYPE array<object> FLEXIBLE;
DEFINE FIELD yanked ON package_version TYPE bool;
DEFINE FIELD published_at ON package_version TYPE int;
DEFINE FIELD published_by ON package_version TYPE string;
DEFINE INDEX package_version_package ON package_version FIELDS package;
DEFINE INDEX package_version_key ON package_version FIELDS key;

DEFINE TABLE blob SCHEMAFULL;
DEFINE FIELD size ON blob TYPE int;
DEFINE FIELD chunks ON blob TYPE int;
DEFINE FIELD created_at ON blob TYPE int;

DEFINE TABLE blob_chunk SCHEMAFULL;
DEFINE FIELD data ON blob_chunk TYPE string;
"#;

/// Installs from the registry: the version each package runs (the desired state every node
/// converges to), its range, pin, grants and the request the installer decided on, the version
/// waiting for a grant, and an audit log of who changed what.
const V19: &str = r#"
DEFINE TABLE install SCHEMAFULL;
DEFINE FIELD version ON install TYPE string;
DEFINE FIELD range ON install TYPE string;
DEFINE FIELD pinned ON install TYPE bool;
DEFINE FIELD grants ON install TYPE object FLEXIBLE;
DEFINE FIELD decided ON install TYPE object FLEXIBLE;
DEFINE FIELD previous ON install TYPE option<string>;
DEFINE FIELD waiting ON install TYPE option<string>;
DEFINE FIELD disabled ON install TYPE option<string>;
DEFINE FIELD installed_by ON install TYPE string;
DEFINE FIELD updated_at ON install TYPE int;

DEFINE TABLE install_audit SCHEMAFULL;
DEFINE FIELD at ON install_audit TYPE int;
DEFINE FIELD actor ON install_audit TYPE string;
DEFINE FIELD action ON install_audit TYPE string;
DEFINE FIELD package ON install_audit TYPE string;
DEFINE FIELD from_version ON install_audit TYPE option<string>;
DEFINE FIELD to_version ON install_audit TYPE option<string>;
DEFINE FIELD detail ON install_audit TYPE option<string>;
DEFINE INDEX install_audit_at ON install_audit FIELDS at;
"#;

/// Publishers' publish tokens, for publishing from CI: stored as SHA-256 hashes only, each
/// good for publishing as its publisher and nothing else. Packages mirrored from another
/// registry (`source`), and the keys of their publishers there, pinned on first install.
const V20: &str = r#"
DEFINE TABLE publish_token SCHEMAFULL;
DEFINE FIELD publisher ON publish_token TYPE string;
DEFINE FIELD hash ON publish_token TYPE string;
DEFINE FIELD label ON publish_token TYPE string;
DEFINE FIELD created_at ON publish_token TYPE int;
DEFINE FIELD last_used_at ON publish_token TYPE option<int>;
DEFINE INDEX publish_token_hash ON publish_token FIELDS hash UNIQUE;
DEFINE INDEX publish_token_publisher ON publish_token FIELDS publisher;

DEFINE FIELD source ON package TYPE option<string>;
DEFINE TABLE remote_key SCHEMAFULL;
DEFINE FIELD registry ON remote_key TYPE string;
DEFINE FIELD publisher ON remote_key TYPE string;
DEFINE FIELD public_key ON remote_key TYPE string;
DEFINE FIELD created_at ON remote_key TYPE int;
DEFINE FIELD revoked_at ON remote_key TYPE option<int>;
DEFINE INDEX remote_key_publisher ON remote_key FIELDS publisher;
"#;

/// Installs for one school: the row is keyed `NAME@SCHOOL` and names its package and school;
/// the audit log says whose install a change was.
const V21: &str = r#"
DEFINE FIELD package ON install TYPE option<string>;
DEFINE FIELD school ON install TYPE option<string>;
DEFINE INDEX install_school ON install FIELDS school;
DEFINE FIELD school ON install_audit TYPE option<string>;
"#;

#[derive(Deserialize)]
struct Applied {
    version: u32,
}

/// Applies every migration newer than the newest recorded one.
pub(super) async fn apply(db: &Db) -> StoreResult<()> {
    apply_upto(db, u32::MAX).await
}

/// Applies the migrations newer than the newest recorded one, up to `upto`.
async fn apply_upto(db: &Db, upto: u32) -> StoreResult<()> {
    db.exec(
        "DEFINE TABLE IF NOT EXISTS migration SCHEMAFULL;
         DEFINE FIELD IF NOT EXISTS version ON migration TYPE int;
         DEFINE FIELD IF NOT EXISTS name ON migration TYPE string;
         DEFINE FIELD IF NOT EXISTS applied_at ON migration TYPE int;
         DEFINE INDEX IF NOT EXISTS migration_version ON migration FIELDS version UNIQUE;",
        json!({}),
    )
    .await?;
    let applied: Vec<Applied> = db
        .rows("SELECT version FROM migration ORDER BY version", json!({}))
        .await?;
    let newest = applied.iter().map(|a| a.version).max().unwrap_or(0);
    if let Some(&(latest, _, _)) = MIGRATIONS.last()
        && newest > latest
    {
        return Err(StoreError::Db(format!(
            "the database is at schema version {newest}, newer than this penpal knows ({latest}): \
             upgrade penpal before pointing it at this database"
        )));
    }
    for &(version, name, sql) in MIGRATIONS
        .iter()
        .filter(|(v, _, _)| *v > newest && *v <= upto)
    {
        let script = format!(
            "BEGIN TRANSACTION;\n{sql}\nCREATE migration CONTENT {{ version: $version, name: $name, applied_at: $at }};\nCOMMIT TRANSACTION;"
        );
        db.exec(
            &script,
            json!({"version": version, "name": name, "at": now_ms()}),
        )
        .await
        .map_err(|e| StoreError::Db(format!("migration {version} ({name}) failed: {e}")))?;
        tracing::info!(version, name, "schema migration applied");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// An account linked by (issuer, `sub`) before links were per school stays linked in each
    /// school it was used in, and nowhere else.
    #[tokio::test]
    async fn platform_accounts_move_under_their_schools() {
        let db = Db::connect_unmigrated("mem://").await.unwrap();
        apply_upto(&db, 15).await.unwrap();
        db.exec(
            "CREATE lti_platform:p1 CONTENT { school: 's1', name: 'C', plugin: 'canvas', issuer: 'https://canvas.instructure.com',
                client_id: 'a', deployment_ids: ['d'], auth_url: 'x', token_url: 'x', jwks_url: 'x', created_at: 1 };
             CREATE membership CONTENT { school: 's1', user: 'u1', role: 'learner', joined_at: 1 };
             CREATE membership CONTENT { school: 's2', user: 'u1', role: 'learner', joined_at: 1 };
             CREATE lti_user:['https://canvas.instructure.com', 'sub-1'] CONTENT {
                issuer: 'https://canvas.instructure.com', sub: 'sub-1', user: 'u1', created_at: 7 };",
            json!({}),
        )
        .await
        .unwrap();
        apply(&db).await.unwrap();
        let links: Vec<Value> = db
            .rows(
                "SELECT school, sub, user, created_at FROM lti_user",
                json!({}),
            )
            .await
            .unwrap();
        assert_eq!(
            links,
            [json!({"school": "s1", "sub": "sub-1", "user": "u1", "created_at": 7})]
        );
        let user: Option<String> = db
            .one(
                "SELECT VALUE user FROM lti_user:['s1', 'https://canvas.instructure.com', 'sub-1']",
                json!({}),
            )
            .await
            .unwrap();
        assert_eq!(user.as_deref(), Some("u1"));
    }

    /// A database written by the first schema keeps every row, now under its new key.
    #[tokio::test]
    async fn keyed_rows_migration_keeps_data() {
        let db = Db::connect_unmigrated("mem://").await.unwrap();
        apply_upto(&db, 1).await.unwrap();
        db.exec(
            "CREATE message CONTENT { conversation: 'c1', user: 'u1', seq: 1, role: 'learner', text: 'Je suis allé',
                created_at: 5, status: 'answered', corrections: [{ original: 'a' }], vocabulary: [] };
             CREATE message CONTENT { conversation: 'c1', user: 'u1', seq: 2, role: 'tutor', text: 'Bien !',
                created_at: 6, status: 'ok', corrections: [], vocabulary: [], debrief: 'ok' };
             CREATE turn_stat CONTENT { user: 'u1', conversation: 'c1', language: 'fr', at: 7, words: 3, errors: 1,
                categories: { grammar: 1 }, observed: 'B1', confidence: 0.5 };
             CREATE usage CONTENT { conversation: 'c1', at: 8, model: 'm', purpose: 'demo',
                prompt_tokens: 1, completion_tokens: 2, cost_micros: 3 };
             CREATE vocab CONTENT { user: 'u1', language: 'fr', term: 'chat', translation: 'cat', added_at: 1,
                due_at: 2, interval_days: 1.0, ease: 2.5, reps: 3, lapses: 0 };",
            json!({}),
        )
        .await
        .unwrap();
        apply(&db).await.unwrap();

        let texts: Vec<String> = db
            .rows(
                "SELECT VALUE text FROM message:['c1', 1]..=['c1', 2]",
                json!({}),
            )
            .await
            .unwrap();
        assert_eq!(texts, ["Je suis allé", "Bien !"]);
        let debrief: Option<String> = db
            .one("SELECT VALUE debrief FROM message:['c1', 2]", json!({}))
            .await
            .unwrap();
        assert_eq!(debrief.as_deref(), Some("ok"));
        let stats: Vec<i64> = db
            .rows(
                "SELECT VALUE errors FROM turn_stat:['u1', NONE]..=['u1', ..]",
                json!({}),
            )
            .await
            .unwrap();
        assert_eq!(stats, [1]);
        let anonymous: Vec<i64> = db
            .rows(
                "SELECT VALUE cost_micros FROM usage:['', NONE]..=['', ..]",
                json!({}),
            )
            .await
            .unwrap();
        assert_eq!(anonymous, [3]);
        let reps: Option<i64> = db
            .one(
                "SELECT VALUE reps FROM vocab:['u1', 'fr', 'chat']",
                json!({}),
            )
            .await
            .unwrap();
        assert_eq!(reps, Some(3));
        // The new key enforces what the unique index did.
        assert!(
            db.exec(
                "CREATE message:['c1', 2] CONTENT { conversation: 'c1', user: 'u1', seq: 2, role: 'tutor', text: 'x',
                    created_at: 9, status: 'ok', corrections: [], vocabulary: [] }",
                json!({}),
            )
            .await
            .is_err()
        );
    }
}

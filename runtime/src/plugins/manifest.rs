//! `penpal-plugin.toml`: what a plugin is and what it asks for.
//!
//! Parsing is strict — unknown fields, bad names and versions, and sections that do not fit the
//! plugin's kind are errors that name the offending key — because a manifest is the contract
//! an installer grants capabilities against; a typo must never silently widen or narrow it.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::bindings::WitVersion;

/// The file name of a manifest inside a plugin package.
pub const MANIFEST_FILE: &str = "penpal-plugin.toml";

/// A parsed, validated manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Who the plugin is.
    pub plugin: PluginInfo,
    /// What it may ask the host for (each still needs the installer's grant).
    #[serde(default)]
    pub capabilities: Capabilities,
    /// For tutor personalities: what they teach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tutor: Option<TutorInfo>,
    /// For payment providers: what they charge in.
    #[serde(
        default,
        rename = "payment-provider",
        skip_serializing_if = "Option::is_none"
    )]
    pub payment_provider: Option<PaymentProviderInfo>,
    /// For notifiers: the channel they deliver on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifier: Option<NotifierInfo>,
    /// For LMS integrations: the platform they speak to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lms: Option<LmsInfo>,
}

/// The `[plugin]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginInfo {
    /// Unique name: 2–64 of `a-z`, `0-9` and `-`, starting with a letter.
    pub name: PluginName,
    /// The plugin's own semantic version.
    pub version: semver::Version,
    /// Which world the component implements.
    pub kind: Kind,
    /// The `penpal:plugin` WIT version the component was built against.
    pub wit: semver::Version,
    /// Who publishes it.
    pub publisher: Text<64>,
    /// One or two sentences for people choosing a plugin.
    pub description: Text<500>,
    /// The component file, relative to the manifest; `plugin.wasm` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
}

/// The four kinds of plugin, one per WIT world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A tutor personality (`world tutor`).
    Tutor,
    /// A payment provider (`world payment-provider`).
    PaymentProvider,
    /// A notifier (`world notifier`).
    Notifier,
    /// An LMS integration (`world lms`).
    Lms,
}

impl Kind {
    /// The WIT interface the kind's world exports.
    pub fn export_interface(self) -> &'static str {
        match self {
            Kind::Tutor => "tutoring",
            Kind::PaymentProvider => "payments",
            Kind::Notifier => "notifications",
            Kind::Lms => "lms-integration",
        }
    }

    /// Every kind.
    pub const ALL: [Kind; 4] = [
        Kind::Tutor,
        Kind::PaymentProvider,
        Kind::Notifier,
        Kind::Lms,
    ];
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Tutor => "tutor",
            Kind::PaymentProvider => "payment-provider",
            Kind::Notifier => "notifier",
            Kind::Lms => "lms",
        })
    }
}

/// The `[capabilities]` section: everything beyond logging and reading settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Hosts reachable over outbound HTTPS (`api.example.com`, or `*.example.com`; `operator`
    /// for whichever hosts the operator grants).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub http: Vec<HostPattern>,
    /// Names of operator secrets the plugin reads.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub secrets: Vec<SecretName>,
    /// A private key-value store.
    #[serde(default)]
    pub kv: bool,
    /// Completions from the host's model.
    #[serde(default)]
    pub llm: bool,
}

impl Capabilities {
    /// What is in both `self` (requested) and `granted`. A request for
    /// [`OPERATOR_HOSTS`] takes every host the operator grants (and nothing more).
    pub fn intersect(&self, granted: &Capabilities) -> Capabilities {
        let operator = self.http.iter().any(HostPattern::is_operator);
        Capabilities {
            http: granted
                .http
                .iter()
                .filter(|h| !h.is_operator() && (operator || self.http.contains(h)))
                .cloned()
                .collect(),
            secrets: self
                .secrets
                .iter()
                .filter(|s| granted.secrets.contains(s))
                .cloned()
                .collect(),
            kv: self.kv && granted.kv,
            llm: self.llm && granted.llm,
        }
    }

    /// What `self` asks for that `seen` does not: the part of a new version's request an
    /// installer has not yet decided on.
    pub fn beyond(&self, seen: &Capabilities) -> Capabilities {
        Capabilities {
            http: self
                .http
                .iter()
                .filter(|h| !seen.http.contains(h))
                .cloned()
                .collect(),
            secrets: self
                .secrets
                .iter()
                .filter(|s| !seen.secrets.contains(s))
                .cloned()
                .collect(),
            kv: self.kv && !seen.kv,
            llm: self.llm && !seen.llm,
        }
    }

    /// Everything in `self` or `other`, each once.
    pub fn union(&self, other: &Capabilities) -> Capabilities {
        let mut out = self.clone();
        out.http.extend(other.beyond(self).http);
        out.secrets.extend(other.beyond(self).secrets);
        out.kv |= other.kv;
        out.llm |= other.llm;
        out
    }

    /// Each capability as a sentence for the person deciding whether to grant it.
    pub fn in_words(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.kv {
            out.push("Keep its own data on this server (a private key-value store)".to_string());
        }
        if self.llm {
            out.push(
                "Ask this server's language model for completions (counted as usage)".to_string(),
            );
        }
        for s in &self.secrets {
            out.push(format!("Read the operator's secret `{}`", s.0));
        }
        for h in &self.http {
            out.push(if h.is_operator() {
                "Connect to hosts the operator chooses".to_string()
            } else {
                format!("Connect to {} over the internet", h.0)
            });
        }
        out
    }

    /// True when nothing beyond logging and settings is asked for.
    pub fn is_empty(&self) -> bool {
        self.http.is_empty() && self.secrets.is_empty() && !self.kv && !self.llm
    }

    /// One line for people: `kv, llm, secrets: a, b, http: x.com`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.kv {
            parts.push("kv".to_string());
        }
        if self.llm {
            parts.push("llm".to_string());
        }
        if !self.secrets.is_empty() {
            let names: Vec<&str> = self.secrets.iter().map(|s| s.0.as_str()).collect();
            parts.push(format!("secrets: {}", names.join(", ")));
        }
        if !self.http.is_empty() {
            let hosts: Vec<&str> = self
                .http
                .iter()
                .map(|h| {
                    if h.is_operator() {
                        "hosts the operator grants"
                    } else {
                        h.0.as_str()
                    }
                })
                .collect();
            parts.push(format!("http: {}", hosts.join(", ")));
        }
        if parts.is_empty() {
            "nothing beyond logging and settings".into()
        } else {
            parts.join("; ")
        }
    }
}

/// The `[tutor]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TutorInfo {
    /// What learners see in the personality picker.
    pub display_name: Text<80>,
    /// Target languages it teaches (BCP 47).
    pub languages: NonEmpty<LanguageTag>,
    /// Chat modes it runs.
    pub modes: NonEmpty<Mode>,
    /// CEFR levels it serves.
    pub levels: NonEmpty<Level>,
}

/// The `[payment-provider]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PaymentProviderInfo {
    /// What operators see when choosing a provider.
    pub display_name: Text<80>,
    /// ISO 4217 currencies it can charge in, upper case (`EUR`, `USD`).
    pub currencies: NonEmpty<Currency>,
}

/// The `[notifier]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NotifierInfo {
    /// What operators see when choosing channels.
    pub display_name: Text<80>,
    /// The channel it delivers on.
    pub channel: Channel,
}

/// A notification channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// Email through a provider's API.
    Email,
    /// Text messages.
    Sms,
    /// Mobile or browser push.
    Push,
    /// Chat apps (Slack, Discord, Teams…).
    Chat,
    /// A signed HTTP POST to any receiver.
    Webhook,
}

/// The `[lms]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LmsInfo {
    /// What school admins see when registering a platform.
    pub display_name: Text<80>,
    /// The platform's short id, such as `moodle` (what `platform()` answers).
    pub platform: Slug,
}

/// A chat mode, as written in a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Explicit corrections.
    Tutor,
    /// Natural conversation.
    Conversation,
    /// Scenarios with roles.
    RolePlay,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Tutor => "tutor",
            Mode::Conversation => "conversation",
            Mode::RolePlay => "role-play",
        })
    }
}

/// A CEFR level, as written in a manifest.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[allow(missing_docs)]
pub enum Level {
    A1,
    A2,
    B1,
    B2,
    C1,
    C2,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::A1 => "A1",
            Level::A2 => "A2",
            Level::B1 => "B1",
            Level::B2 => "B2",
            Level::C1 => "C1",
            Level::C2 => "C2",
        })
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
            Channel::Chat => "chat",
            Channel::Webhook => "webhook",
        })
    }
}

macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $check:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(pub String);

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                let check: fn(&str) -> bool = $check;
                if check(&value) {
                    Ok($name(value))
                } else {
                    Err(format!("`{value}` is not {}", $what))
                }
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn is_slug(s: &str, max: usize) -> bool {
    (2..=max).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.ends_with('-')
}

validated_string!(
    /// A plugin's name.
    PluginName,
    |s| is_slug(s, 64),
    "a valid plugin name (2–64 characters of a-z, 0-9 and -, starting with a letter)"
);
validated_string!(
    /// A short lower-case identifier, such as `moodle`.
    Slug,
    |s| is_slug(s, 32),
    "a short id (2–32 characters of a-z, 0-9 and -, starting with a letter)"
);
validated_string!(
    /// An ISO 4217 currency code in upper case, such as `EUR`.
    Currency,
    |s| s.len() == 3 && s.chars().all(|c| c.is_ascii_uppercase()),
    "a currency code such as `EUR` (three upper-case letters)"
);
validated_string!(
    /// The name of an operator secret.
    SecretName,
    |s| (1..=64).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit()),
    "a valid secret name (letters, digits and _, not starting with a digit)"
);
/// In a manifest's `http` list: the plugin reaches whichever hosts the operator grants it (a
/// webhook's receiver, a self-hosted API), not hosts it names in advance. Shown as such when
/// it is installed; the operator's grant still names every host, and the network checks apply.
pub const OPERATOR_HOSTS: &str = "operator";

/// Where a plugin may send HTTP requests: `[http://|https://]host[:port]`, the host optionally
/// a `*.` wildcard over one organisation's subdomains. HTTPS on 443 unless it says otherwise.
/// In a manifest, [`OPERATOR_HOSTS`] asks for the hosts the operator chooses.
/// IP addresses are refused (penpal checks the addresses a name resolves to, and an address
/// would bypass that), and so is a wildcard over a public suffix (`*.com`, `*.co.uk`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostPattern(pub String);

/// A [`HostPattern`] taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostGrant {
    /// `https` (the default) or `http`.
    pub https: bool,
    /// The host, lower case, without the wildcard.
    pub host: String,
    /// Whether it covers every subdomain of `host` (not `host` itself).
    pub wildcard: bool,
    /// The one port allowed.
    pub port: u16,
}

impl HostPattern {
    /// Whether this is [`OPERATOR_HOSTS`] (which matches no host by itself).
    pub fn is_operator(&self) -> bool {
        self.0 == OPERATOR_HOSTS
    }

    /// The pattern taken apart (it was checked when made).
    pub fn grant(&self) -> HostGrant {
        parse_host_pattern(&self.0).unwrap_or(HostGrant {
            https: true,
            host: String::new(),
            wildcard: false,
            port: 443,
        })
    }
}

fn parse_host_pattern(s: &str) -> Result<HostGrant, String> {
    let shape = || {
        format!(
            "`{s}` is not a host such as `api.example.com`, `*.example.com`, \
             `api.example.com:8443` or `http://api.example.com` (no path)"
        )
    };
    let (https, rest) = match s.split_once("://") {
        Some(("https", rest)) => (true, rest),
        Some(("http", rest)) => (false, rest),
        Some(_) => return Err(shape()),
        None => (true, s),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(shape)?,
        ),
        None => (rest, if https { 443 } else { 80 }),
    };
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(name) => (true, name),
        None => (false, host),
    };
    let labels_ok = (1..=253).contains(&name.len())
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !labels_ok {
        return Err(shape());
    }
    // No top-level domain is all digits: this is an IPv4 address (or a wildcard over one).
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!(
            "`{s}` is an IP address: grant a host name (penpal checks every address a name \
             resolves to, which an address would bypass)"
        ));
    }
    if wildcard && psl::suffix_str(name) == Some(name) {
        return Err(format!(
            "`{s}` covers every domain under the public suffix `{name}`: name one \
             organisation's domain, such as `*.example.{name}`"
        ));
    }
    Ok(HostGrant {
        https,
        host: name.to_string(),
        wildcard,
        port,
    })
}

impl TryFrom<String> for HostPattern {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if value == OPERATOR_HOSTS {
            return Ok(HostPattern(value));
        }
        parse_host_pattern(&value).map(|_| HostPattern(value))
    }
}

impl From<HostPattern> for String {
    fn from(value: HostPattern) -> String {
        value.0
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

validated_string!(
    /// A BCP 47 language tag such as `fr` or `pt-BR`.
    LanguageTag,
    |s| {
        let mut parts = s.split('-');
        let primary = parts.next().unwrap_or_default();
        (2..=3).contains(&primary.len())
            && primary.chars().all(|c| c.is_ascii_lowercase())
            && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
    },
    "a language tag such as `fr` or `pt-BR`"
);

/// A non-empty string of at most `MAX` characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text<const MAX: usize>(pub String);

impl<const MAX: usize> TryFrom<String> for Text<MAX> {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let n = value.trim().chars().count();
        if n == 0 {
            Err("must not be empty".into())
        } else if n > MAX {
            Err(format!("is {n} characters long; at most {MAX} are allowed"))
        } else {
            Ok(Text(value.trim().to_string()))
        }
    }
}

impl<const MAX: usize> From<Text<MAX>> for String {
    fn from(value: Text<MAX>) -> String {
        value.0
    }
}

impl<const MAX: usize> fmt::Display for Text<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A list with at least one element and no duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<T>", into = "Vec<T>")]
pub struct NonEmpty<T: Clone + PartialEq + fmt::Debug>(pub Vec<T>);

impl<T: Clone + PartialEq + fmt::Debug> TryFrom<Vec<T>> for NonEmpty<T> {
    type Error = String;
    fn try_from(value: Vec<T>) -> Result<Self, String> {
        if value.is_empty() {
            return Err("must list at least one value".into());
        }
        for (i, v) in value.iter().enumerate() {
            if value[..i].contains(v) {
                return Err(format!("lists {v:?} twice"));
            }
        }
        Ok(NonEmpty(value))
    }
}

impl<T: Clone + PartialEq + fmt::Debug> From<NonEmpty<T>> for Vec<T> {
    fn from(value: NonEmpty<T>) -> Vec<T> {
        value.0
    }
}

/// Why a manifest was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(pub String);

impl Manifest {
    /// Parses and validates a manifest's text.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ManifestError(locate(text, &e)))?;
        let manifest: Manifest = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let at = locate(text, &inner);
            if path == "." || path.is_empty() {
                ManifestError(at)
            } else {
                ManifestError(format!("`{path}`: {at}"))
            }
        })?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ManifestError(format!("cannot read {}: {e}", path.display())))?;
        Manifest::parse(&text).map_err(|e| ManifestError(format!("{}: {}", path.display(), e.0)))
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let p = &self.plugin;
        if WitVersion::of(&p.wit).is_none() {
            let known: Vec<String> = WitVersion::ALL
                .iter()
                .map(|v| v.provided().to_string())
                .collect();
            return Err(ManifestError(format!(
                "`plugin.wit`: this host runs penpal:plugin {}, not {}",
                known.join(", "),
                p.wit
            )));
        }
        if let Some(component) = &p.component {
            let path = Path::new(component);
            let inside = path
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !inside || !component.ends_with(".wasm") {
                return Err(ManifestError(format!(
                    "`plugin.component`: `{component}` must be a relative path to a .wasm file \
                     inside the package"
                )));
            }
        }
        // Exactly the section of the plugin's own kind, and no other.
        let sections = [
            (
                Kind::Tutor,
                self.tutor.is_some(),
                "display-name, languages, modes, levels",
            ),
            (
                Kind::PaymentProvider,
                self.payment_provider.is_some(),
                "display-name, currencies",
            ),
            (
                Kind::Notifier,
                self.notifier.is_some(),
                "display-name, channel",
            ),
            (Kind::Lms, self.lms.is_some(), "display-name, platform"),
        ];
        for (kind, present, fields) in sections {
            if kind == p.kind && !present {
                return Err(ManifestError(format!(
                    "`{kind}`: a {kind} plugin needs a [{kind}] section ({fields})"
                )));
            }
            if kind != p.kind && present {
                return Err(ManifestError(format!(
                    "`{kind}`: a [{kind}] section belongs to {kind} plugins; this plugin's kind \
                     is {}",
                    p.kind
                )));
            }
        }
        Ok(())
    }

    /// The component file's path, relative to the manifest.
    pub fn component_file(&self) -> &str {
        self.plugin.component.as_deref().unwrap_or("plugin.wasm")
    }
}

/// A TOML error as `message (line N)`, without the multi-line snippet.
fn locate(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("{message} (line {line})")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str]) -> Capabilities {
        Capabilities {
            http: list
                .iter()
                .map(|h| HostPattern::try_from(h.to_string()).unwrap())
                .collect(),
            ..Capabilities::default()
        }
    }

    #[test]
    fn a_plugin_leaving_hosts_to_the_operator_gets_exactly_what_is_granted() {
        let webhook = hosts(&["operator"]);
        let granted = hosts(&["hooks.example.org", "operator"]);
        assert_eq!(
            webhook.intersect(&granted),
            hosts(&["hooks.example.org"]),
            "the operator's hosts, and `operator` itself matches nothing"
        );
        assert_eq!(webhook.intersect(&Capabilities::default()), hosts(&[]));
        let named = hosts(&["api.sendgrid.com"]);
        assert_eq!(
            named.intersect(&hosts(&["api.sendgrid.com", "evil.example"])),
            hosts(&["api.sendgrid.com"]),
            "without `operator`, only the hosts the manifest names"
        );
        assert!(webhook.describe().contains("hosts the operator grants"));
    }
}

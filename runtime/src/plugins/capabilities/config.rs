//! `config`: the operator's settings for a plugin (always readable) and its secrets (only those
//! its manifest requested and the installer granted). A [`Secret`] never shows its value in
//! `Debug`, `Display`, logs or errors; the only way to read it is [`Secret::expose`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use wasmtime::component::Linker;

use super::{CallState, Capability, Ctx, Identity, Services, View};
use crate::plugins::bindings::{v0_1, v0_2};
use crate::plugins::error::PluginError;

/// A secret value. Its `Debug` and `Display` print `<redacted>`; it is not `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must use it (handing it to a plugin that was granted
    /// it). Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The operator's settings and secrets for one plugin.
#[derive(Debug, Clone, Default)]
pub struct PluginConfig {
    /// Plain settings, readable by the plugin.
    pub settings: BTreeMap<String, String>,
    /// Secrets, readable only when granted.
    pub secrets: BTreeMap<String, Secret>,
}

/// The `config` capability.
pub(crate) struct Config;

impl Capability for Config {
    type State = Config;

    fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
        v0_1::config::add_to_linker::<_, View<Config>>(linker, CallState::view::<Config>)?;
        v0_2::config::add_to_linker::<_, View<Config>>(linker, CallState::view::<Config>)
    }

    fn validate(who: &Identity, services: &Services) -> Vec<String> {
        let set = services.config.get(&who.name);
        who.granted
            .secrets
            .iter()
            .filter(|name| !set.is_some_and(|c| c.secrets.contains_key(&name.0)))
            .map(|name| {
                format!(
                    "the secret `{name}` is granted but not set: the plugin's calls that need \
                     it will fail (set it under [plugins.{}.secrets])",
                    who.name
                )
            })
            .collect()
    }

    fn state(_: &Arc<Identity>, _: &Services) -> Config {
        Config
    }
}

impl Ctx<'_, Config> {
    fn setting(&self, key: &str) -> Option<String> {
        self.services
            .config
            .get(&self.who.name)
            .and_then(|c| c.settings.get(key))
            .cloned()
    }

    fn secret(&self, name: &str) -> Result<String, PluginError> {
        if !self.who.granted.secrets.iter().any(|s| s.0 == name) {
            return Err(self.denied(&format!("the secret `{name}`")));
        }
        self.services
            .config
            .get(&self.who.name)
            .and_then(|c| c.secrets.get(name))
            .map(|s| s.expose().to_string())
            .ok_or_else(|| {
                PluginError::NotFound(format!("the operator has not set the secret `{name}`"))
            })
    }
}

macro_rules! config_host {
    ($($version:ident),*) => {$(
        impl $version::config::Host for Ctx<'_, Config> {
            async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
                Ok(self.setting(&key))
            }

            async fn secret(
                &mut self,
                name: String,
            ) -> wasmtime::Result<Result<String, $version::types::PluginError>> {
                Ok(Ctx::secret(self, &name).map_err(Into::into))
            }
        }
    )*};
}

config_host!(v0_1, v0_2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("sk_live_123");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{s}"), "<redacted>");
        let config = PluginConfig {
            settings: BTreeMap::new(),
            secrets: BTreeMap::from([("key".to_string(), s.clone())]),
        };
        assert!(!format!("{config:?}").contains("sk_live_123"));
        assert_eq!(s.expose(), "sk_live_123");
    }
}

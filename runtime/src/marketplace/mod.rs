//! The marketplace: signed plugin packages, publishers, versions, installs and their grants.
//! Built in steps (`docs/marketplace.md`); so far what a package's signature covers and how it
//! is made and checked ([`signature`]), and the archive a package travels in ([`archive`]).

pub mod archive;
pub mod signature;

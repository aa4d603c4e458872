//! The marketplace: signed plugin packages, publishers, versions, installs and their grants.
//! Built in steps (`docs/marketplace.md`); so far what a package's signature covers and how it
//! is made and checked ([`signature`]), the archive a package travels in ([`archive`]), content
//! stored by digest ([`blobs`]), publishers and their keys ([`publishers`]), and the registry's
//! publish with every check it makes ([`registry`]), what it shows — the catalogue, pages,
//! downloads, yanking ([`catalogue`]) — installs with their grants ([`installs`]), from here or
//! from another registry ([`remote`]), all served by [`routes`]; and what `penpal plugin new`
//! writes ([`templates`]).

pub mod archive;
pub mod blobs;
pub mod catalogue;
pub mod installs;
pub mod publishers;
pub mod registry;
pub mod remote;
pub mod routes;
pub mod signature;
pub mod templates;

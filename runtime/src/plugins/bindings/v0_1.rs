//! `penpal:plugin@0.1`: the shared imports and the tutor world, the only one 0.1 hosted (its
//! other worlds never loaded, so no component needs them).

#![allow(missing_docs)]

wit_version!("../wit/v0.1", tutor => "tutor");

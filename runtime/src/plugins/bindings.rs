//! The host side of the `penpal:plugin` WIT contract, generated once here; the rest of the host
//! uses the re-exports in [`super`].

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit/v0.1",
    world: "tutor",
    imports: { default: async | trappable },
    exports: { default: async },
});

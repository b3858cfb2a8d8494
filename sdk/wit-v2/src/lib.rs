//! Guest bindings for `wit/since_v0.2.0` (incremental detectors), re-exported as
//! `plumbline_sdk::bindings_v2`.
//!
//! A crate of its own, one per contract version, so a component carries the description
//! of exactly one world: wit-bindgen smuggles each world's description through the linker
//! as a custom section, and a component built from two (0.1.0 and 0.2.0) would have to
//! export both worlds' functions. The description is linked only when a detector's
//! register macro references [`link`] (generated with `disable_custom_section_link_helpers`,
//! so nothing else forces it in).

#![allow(clippy::too_many_arguments)]

// In a module of its own: the export macro wit-bindgen exports at the crate root must not
// meet the module-level alias it also generates. [`link`] sits beside the world's
// description so referencing it links the description.
mod world {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.2.0",
        world: "prepared-detector",
        pub_export_macro: true,
        default_bindings_module: "plumbline_sdk::bindings_v2",
        disable_custom_section_link_helpers: true,
    });

    /// Referenced by `register_incremental_detector!`: pulls this world's description (and the
    /// allocator the canonical ABI needs) into the component.
    #[doc(hidden)]
    #[inline(never)]
    pub fn link() {
        wit_bindgen::rt::maybe_link_cabi_realloc();
    }
}

pub use world::*;

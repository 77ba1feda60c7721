//! The WASM entry point: hydrate the server-rendered page and nothing else.
#![recursion_limit = "512"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(strata_app::App);
    // A marker for tests and scripts: the page's controls are live from here on.
    if let Some(body) = leptos::prelude::document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}

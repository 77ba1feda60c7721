//! Suggestions for a mistyped name: the one implementation lives in `strata_app::names` (the
//! pickers check filters in the browser with it too).

pub(crate) use strata_app::names::closest;

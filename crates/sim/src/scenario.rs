//! Scenario files (stub).

/// Mounts the scenario routes on the control scope.
pub fn configure_control(_cfg: &mut actix_web::web::ServiceConfig) {}

//! The API's tests: one binary, a module per feature, each test with its own database.

mod admin;
mod auth;
mod cache;
mod conventions;
mod counters;
mod dashboard;
mod exports;
mod helpers;
mod invites;
mod limits;
mod openapi;
mod webhooks;

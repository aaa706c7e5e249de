//! Scenarios and workloads played in the background through the control API
//! (`POST /control/scenarios`, `POST /control/workloads`) and their status
//! (`GET /control/runs`, `GET /control/runs/{id}`). The scenario runner is
//! [`crate::scenario`]; the workload generator is [`crate::workload`].

use crate::{
    scenario::{RunOptions, RunReport, Scenario, Step, run},
    workload::{self, WorkloadSpec},
    world::World,
};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

/// A background run started through the control API.
#[derive(Debug, Clone, Serialize)]
pub struct RunStatus {
    /// Run id.
    pub id: u64,
    /// `scenario` or `workload`.
    pub kind: &'static str,
    /// `running` or `done`.
    pub state: &'static str,
    /// Steps in the plan.
    pub planned_steps: usize,
    /// The report, once done.
    pub report: Option<RunReport>,
}

/// Background runs of one simulator.
#[derive(Debug, Default)]
pub(crate) struct Runs {
    list: Vec<RunStatus>,
}

pub(crate) type SharedRuns = Arc<Mutex<Runs>>;

/// Starts playing `scenario` in the background; the id to poll at `GET /control/runs/{id}`.
fn spawn_run(
    runs: &SharedRuns,
    world: World,
    scenario: Scenario,
    options: RunOptions,
    kind: &'static str,
) -> u64 {
    let runs = Arc::clone(runs);
    let id = {
        let mut guard = runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let id = guard.list.len() as u64 + 1;
        guard.list.push(RunStatus {
            id,
            kind,
            state: "running",
            planned_steps: scenario.steps.len(),
            report: None,
        });
        id
    };
    tokio::spawn(async move {
        let report = run(&world, &scenario, options).await;
        tracing::info!(id, kind, ?report.steps, report.failed, "run finished");
        let mut guard = runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(status) = guard.list.iter_mut().find(|r| r.id == id) {
            status.state = "done";
            status.report = Some(report);
        }
    });
    id
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    steps: Vec<Step>,
    #[serde(default)]
    speed: Option<f64>,
    #[serde(default)]
    until_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadBody {
    spec: WorkloadSpec,
    #[serde(default)]
    speed: Option<f64>,
}

fn bad(message: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::BadRequest().json(serde_json::json!({ "error": message.to_string() }))
}

fn options(speed: Option<f64>, until_ms: Option<u64>) -> Result<RunOptions, String> {
    let speed = speed.unwrap_or(1.0);
    if speed.is_nan() || speed <= 0.0 {
        return Err("speed must be positive".into());
    }
    Ok(RunOptions {
        speed,
        until: until_ms.map(Duration::from_millis),
    })
}

async fn post_scenario(
    body: web::Bytes,
    world: web::Data<World>,
    runs: web::Data<SharedRuns>,
) -> HttpResponse {
    let body: ScenarioBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad(format!("malformed scenario: {e}")),
    };
    let options = match options(body.speed, body.until_ms) {
        Ok(o) => o,
        Err(e) => return bad(e),
    };
    let scenario = Scenario {
        name: body.name,
        steps: body.steps,
    };
    let id = spawn_run(
        &runs,
        world.get_ref().clone(),
        scenario,
        options,
        "scenario",
    );
    HttpResponse::Accepted().json(serde_json::json!({ "run_id": id }))
}

async fn post_workload(
    body: web::Bytes,
    world: web::Data<World>,
    runs: web::Data<SharedRuns>,
) -> HttpResponse {
    let body: WorkloadBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad(format!("malformed workload: {e}")),
    };
    let options = match options(body.speed, None) {
        Ok(o) => o,
        Err(e) => return bad(e),
    };
    let scenario = match workload::generate(&body.spec) {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    let steps = scenario.steps.len();
    let id = spawn_run(
        &runs,
        world.get_ref().clone(),
        scenario,
        options,
        "workload",
    );
    HttpResponse::Accepted().json(serde_json::json!({ "run_id": id, "steps": steps }))
}

async fn list_runs(runs: web::Data<SharedRuns>) -> HttpResponse {
    let guard = runs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    HttpResponse::Ok().json(&guard.list)
}

async fn get_run(path: web::Path<u64>, runs: web::Data<SharedRuns>) -> HttpResponse {
    let guard = runs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match guard.list.iter().find(|r| r.id == *path) {
        Some(status) => HttpResponse::Ok().json(status),
        None => HttpResponse::NotFound().json(serde_json::json!({ "error": "no such run" })),
    }
}

/// Mounts `/scenarios`, `/workloads` and `/runs` on the control scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/scenarios", web::post().to(post_scenario))
        .route("/workloads", web::post().to(post_workload))
        .route("/runs", web::get().to(list_runs))
        .route("/runs/{id}", web::get().to(get_run));
}

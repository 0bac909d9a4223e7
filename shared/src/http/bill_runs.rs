//! The nine bill-run endpoints, written once for both kinds of run.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};

use super::caller::acting;
use super::error::{ApiError, ApiResult, ErrorFormat};
use super::handler::{self, Create, TenantFrom};
use super::idempotency::create_or_replay;
use super::request::{check_if_match, json_patch_body, path_id};
use super::response::{resource_response, respond_to};
use super::Deps;
use crate::domain::bill_run::{self, apply_patch, AdhocBillRun, BillRun, Changes, Patched, Progress, Run};
use crate::domain::dates;
use crate::domain::identity::{SCOPE_READ, SCOPE_WRITE};
use crate::domain::key::Id;
use crate::domain::patch::Patch;
use crate::domain::resource::Resource;
use crate::domain::segment::{Segment, StageState};
use crate::retry::with_retries;
use crate::store::repo::{encode, Repo, Tenant, Versioned};
use crate::store::{AuditEvent, Guard, StoreResult};
use tokio::sync::OnceCell;

/// Bill runs answer errors as problem+json.
const FORMAT: ErrorFormat = ErrorFormat::Problem;

/// What the edge needs to know of a kind of run, beyond its domain rules.
pub trait RunResource: Run {
    /// The collection path, e.g. `/bill-runs`.
    const PATH: &'static str;
    /// The path parameter of the id, as the route table names it.
    const ID_PARAM: &'static str;
}

impl RunResource for BillRun {
    const PATH: &'static str = "/bill-runs";
    const ID_PARAM: &'static str = "bill_run_id";
}

impl RunResource for AdhocBillRun {
    const PATH: &'static str = "/adhoc-bill-runs";
    const ID_PARAM: &'static str = "adhoc_bill_run_id";
}

async fn load<R: RunResource>(repo: &Repo<'_, R>, id: &Id) -> ApiResult<Versioned<R>> {
    handler::load(repo, id, R::RUN_KIND.noun()).await
}

/// Reads the run's group guard and refuses (409) when another member of the group collides.
async fn check_group<R: RunResource>(repo: &Repo<'_, R>, run: &R) -> ApiResult<Option<Guard>> {
    let Some(group) = run.group() else {
        return Ok(None);
    };
    let guard = repo.guard(&group).await?;
    run.admit_among(repo.group(&group).await?.iter().map(|other| &other.value))?;
    Ok(Some(guard))
}

/// A run as a GET shows it: while a stage walks its bills, its percentage is the share of the
/// stage's bills its segments have done so far (each segment read by key, strongly consistent),
/// never below what the run stored. Lists show the stored percentage, which moves as each segment finishes.
async fn live_body<R: Run>(tenant: &Tenant<'_>, run: &Versioned<R>) -> StoreResult<String> {
    let progress = run.value.progress();
    let stage = progress.summary_status;
    let Some(state) = StageState::running(run.state(), &progress) else {
        return Ok(run.body.clone());
    };
    let ids = (0..state.segments).filter_map(|index| Segment::id_of(R::RUN_KIND, run.value.run_id(), index));
    let segments = tenant.repo::<Segment>().get_many(ids.map(Id::Int)).await?;
    let done: u64 = segments.iter().flatten().filter(|s| s.value.stage == stage).map(|s| s.value.shown()).sum();
    let pct = StageState::percentage(state.total, done).max(progress.summary_status_percentage);
    if pct == progress.summary_status_percentage {
        return Ok(run.body.clone());
    }
    let mut shown = run.value.clone();
    shown.set_progress(Progress { summary_status_percentage: pct, ..progress });
    encode(&shown)
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// `GET /bill-runs`, `GET /adhoc-bill-runs`
pub async fn list<R: RunResource>(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, handler::list::<R>(deps, &req)).await
}

/// `GET /bill-runs/{bill_run_id}`, `GET /adhoc-bill-runs/{adhoc_bill_run_id}`
pub async fn get<R: RunResource>(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (_, tenant) = acting(deps, &req, SCOPE_READ)?;
        let run = load(&tenant.repo::<R>(), &path_id(&req, R::ID_PARAM, R::KIND.ids)?).await?;
        Ok(resource_response(StatusCode::OK, &live_body(&tenant, &run).await?, run.version))
    })
    .await
}

/// `POST /bill-runs`, `POST /adhoc-bill-runs`: 201 with Location; honours `Idempotency-Key`.
pub async fn create<R: RunResource>(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let Create { principal, tenant, body, idempotency } =
            match Create::begin(deps, &req, TenantFrom::Credential, R::PATH).await? {
                Ok(create) => create,
                Err(replay) => return Ok(replay),
            };
        let repo = tenant.repo::<R>();
        let new = R::parse_new(&body, dates::today())?;
        let id = OnceCell::new();
        let (repo, new, id, idempotency, principal) = (&repo, &new, &id, &idempotency, &principal);
        with_retries(move || async move {
            let id = *id
                .get_or_try_init(|| async {
                    repo.next_id().await?.as_int().ok_or_else(|| ApiError::internal("a run id is an integer"))
                })
                .await?;
            let mut run = new.clone();
            run.set_id(id);
            let mut item = repo.new_item(&run, AuditEvent::new(Some(principal.user_id), "create"))?;
            item.guard = check_group(repo, &run).await?;
            create_or_replay(repo.tenant(), item, Vec::new(), idempotency.as_ref(), &format!("{}/{id}", R::PATH)).await
        })
        .await
    })
    .await
}

/// `PATCH /bill-runs/{bill_run_id}`, `PATCH /adhoc-bill-runs/{adhoc_bill_run_id}` (JSON Patch).
pub async fn update<R: RunResource>(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (principal, tenant) = acting(deps, &req, SCOPE_WRITE)?;
        let id = path_id(&req, R::ID_PARAM, R::KIND.ids)?;
        let patch = Patch::parse(&json_patch_body(&req)?)?;
        let repo = tenant.repo::<R>();
        let (repo, req, id, patch, by) = (&repo, &req, &id, &patch, principal.user_id);
        with_retries(move || async move {
            let current = load(repo, id).await?;
            check_if_match(req, current.version)?;
            match apply_patch(&current.value, patch, by)? {
                Patched::Unchanged => Ok(resource_response(StatusCode::OK, &current.body, current.version)),
                Patched::Changed { run, changes } => {
                    let event = AuditEvent::new(Some(by), "patch").with_changes(changes);
                    write(repo, &current, &run, None, event).await
                }
            }
        })
        .await
    })
    .await
}

/// `POST /adjust-bill-run-schedule/{bill_run_id}?periods=N`
pub async fn adjust_schedule(deps: &Deps, req: Request) -> Response<Body> {
    respond_to(&req, FORMAT, async {
        let (principal, tenant) = acting(deps, &req, SCOPE_WRITE)?;
        let id = path_id(&req, BillRun::ID_PARAM, BillRun::KIND.ids)?;
        let periods = bill_run::parse_periods(req.query_string_parameters_ref().and_then(|q| q.first("periods")))?;
        let repo = tenant.repo::<BillRun>();
        let (repo, req, id, by) = (&repo, &req, &id, principal.user_id);
        with_retries(move || async move {
            let current = load(repo, id).await?;
            check_if_match(req, current.version)?;
            let moved = bill_run::shift_schedule(&current.value, periods)?;
            let guard = check_group(repo, &moved).await?;
            let fields = ["periodStartDate", "periodEndDate", "invoiceDate", "includeUsageUntilDate"];
            let changes = Changes::between(
                &current.value.progress(),
                &moved.progress(),
                fields.into_iter().map(str::to_owned).collect(),
            );
            let event = AuditEvent::new(Some(by), "adjust-schedule").with_changes(changes);
            write(repo, &current, &moved, guard, event).await
        })
        .await
    })
    .await
}

/// The conditional write of a changed run with its audit event. A new stage (or a re-run) starts
/// the worker afresh; other changes keep its place.
async fn write<R: RunResource>(
    repo: &Repo<'_, R>,
    current: &Versioned<R>,
    run: &R,
    guard: Option<Guard>,
    event: AuditEvent,
) -> ApiResult {
    let keeps_place = event.from_status == event.to_status;
    let mut update = repo.update_of(current, run, event)?;
    update.guard = guard;
    update.state = if keeps_place { current.state.clone() } else { None };
    let kept: Option<StageState> = if keeps_place { current.state() } else { None };
    update.work_pending = StageState::run_pending(&run.progress(), kept.as_ref());
    let saved = repo.tenant().update(update).await?;
    Ok(resource_response(StatusCode::OK, &saved.body, saved.version))
}

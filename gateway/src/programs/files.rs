//! Library files in program steps: a step names a file by id (checked when the program is
//! saved), and a file an active program's newest version sends cannot be removed from the
//! library (an older version's step then sends its text alone).

use uuid::Uuid;

use super::definition::Definition;
use crate::state::AppState;
use crate::store::StoreError;
use crate::tenancy::TenantScope;

/// The name of a program whose newest version sends `file`, if any.
pub async fn used_by(
    state: &AppState,
    scope: &TenantScope,
    file: Uuid,
) -> Result<Option<String>, StoreError> {
    let programs = state.store.programs(scope).await?;
    // An archived program sends nothing more (and cannot be edited).
    Ok(programs
        .into_iter()
        .filter(|p| p.status == crate::store::programs::ProgramStatus::Active)
        .find(|p| p.definition.steps.iter().any(|s| s.file == Some(file)))
        .map(|p| p.definition.name))
}

/// Each step's file that is not in the tenant's library, as `steps[i].file` problems.
pub async fn missing(
    state: &AppState,
    scope: &TenantScope,
    definition: &Definition,
) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    for (i, step) in definition.steps.iter().enumerate() {
        let Some(id) = step.file else { continue };
        match state.store.file(scope, id).await {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => problems.push(format!(
                "steps[{i}].file: {id} is not in the file library (POST /v1/files first)"
            )),
            Err(e) => return Err(e),
        }
    }
    Ok(problems)
}

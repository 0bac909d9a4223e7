//! Who is calling: the authorizer's context as a value (`userId`, `tenants`, `scopes`; docs/auth.md).

use serde::{Deserialize, Serialize};

pub const SCOPE_READ: &str = "billing:read";
pub const SCOPE_WRITE: &str = "billing:write";
pub const SCOPE_ADMIN: &str = "billing:admin";

/// The caller: `userId`, `tenants`, `scopes`, as a Lambda authorizer passes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    pub user_id: u64,
    pub tenants: Vec<String>,
    pub scopes: Vec<String>,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    pub fn belongs_to(&self, tenant: &str) -> bool {
        self.tenants.iter().any(|t| t == tenant)
    }
}

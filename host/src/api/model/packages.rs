//! A package's settings changed from the serving version (`PUT …/packages/{package}/manifest`).

use super::*;

/// `PUT …/packages/{package}/manifest`: a new version of the serving version's component with
/// this manifest.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewManifest {
    /// The whole manifest: its JSON form as an object (as `GET …/packages/{package}` shows a
    /// version's), or its TOML text as a string. What it leaves out takes the defaults; nothing
    /// is kept from the serving version's manifest.
    #[schema(value_type = Object)]
    pub manifest: serde_json::Value,
    /// The version the change was made against: refused `409 conflict` when another is serving
    /// by now. Left out, the serving version, whichever it is.
    #[serde(default)]
    pub base_version: Option<i64>,
}

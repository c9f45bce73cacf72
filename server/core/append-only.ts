/**
 * Resource types that are only ever created: no update, patch or delete, for anyone
 * (the audit trail: docs/audit.md). The route layer refuses the changes and the
 * CapabilityStatement does not offer them.
 */
export const APPEND_ONLY_TYPES: ReadonlySet<string> = new Set(['AuditEvent']);

export const CHANGE_INTERACTIONS: ReadonlySet<string> = new Set(['update', 'patch', 'delete']);

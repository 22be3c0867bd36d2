//! Diagnostics as data: a stable code, a severity, a message, labelled spans and help.
//!
//! Core never renders: the binary attaches source text and draws them with miette.

use crate::source::Span;

/// How bad a diagnostic is. Warnings are shown but never fail validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! codes {
    ($($variant:ident => $name:literal,)*) => {
        /// Every diagnostic code drplan emits. The string form is a stable contract: users
        /// search for it and CI jobs match on it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($variant,)* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }
        }
    };
}

codes! {
    Syntax => "drplan::config::syntax",
    UnknownBlock => "drplan::config::unknown_block",
    UnknownAttribute => "drplan::config::unknown_attribute",
    WrongType => "drplan::config::wrong_type",
    MissingAttribute => "drplan::config::missing_attribute",
    MissingBlock => "drplan::config::missing_block",
    DuplicateAttribute => "drplan::config::duplicate_attribute",
    DuplicateBlock => "drplan::config::duplicate_block",
    DuplicateName => "drplan::config::duplicate_name",
    ConflictingBlocks => "drplan::config::conflicting_blocks",
    WrongLabels => "drplan::config::wrong_labels",
    InvalidValue => "drplan::config::invalid_value",
    InvalidDuration => "drplan::config::invalid_duration",
    InvalidCron => "drplan::config::invalid_cron",
    InvalidPercentage => "drplan::config::invalid_percentage",
    InvalidName => "drplan::config::invalid_name",
    EnvUnset => "drplan::config::env_unset",
    UnknownFunction => "drplan::config::unknown_function",
    WrongArguments => "drplan::config::wrong_arguments",
    UnsupportedExpression => "drplan::config::unsupported_expression",
    ActiveRegions => "drplan::config::active_regions",
    MissingProvider => "drplan::config::missing_provider",
    MissingLocation => "drplan::config::missing_location",
    UnknownRegion => "drplan::config::unknown_region",
    ScheduleExceedsRpo => "drplan::config::schedule_exceeds_rpo",
    RecordOutsideZone => "drplan::config::record_outside_zone",
    MissingEndpoint => "drplan::config::missing_endpoint",
    SingleCloudBackups => "drplan::config::single_cloud_backups",
    StandbyWithoutCapacity => "drplan::config::standby_without_capacity",
    DnsWithoutHealthCheck => "drplan::config::dns_without_health_check",
    AutomaticWithoutHealthCheck => "drplan::config::automatic_without_health_check",
    ShortWatchInterval => "drplan::config::short_watch_interval",
    InvalidPointFormat => "drplan::config::invalid_point_format",
    RestoreWithoutCluster => "drplan::config::restore_without_cluster",
    UnknownDatabase => "drplan::config::unknown_database",
    DatabaseKind => "drplan::config::database_kind",
    UnknownComponent => "drplan::config::unknown_component",
    DatabaseInColdRegion => "drplan::config::database_in_cold_region",
    LagExceedsRpo => "drplan::config::lag_exceeds_rpo",
    DatabaseWithoutCluster => "drplan::config::database_without_cluster",
    DatabaseWithoutWriter => "drplan::config::database_without_writer",
    NeedlessRestoreTier => "drplan::config::needless_restore_tier",
    UnavailableRestoreTier => "drplan::config::unavailable_restore_tier",
    UnsupportedHookPoint => "drplan::config::unsupported_hook_point",
    HookWithoutCluster => "drplan::config::hook_without_cluster",
    SecretInEnv => "drplan::config::secret_in_env",
    HookBlocksDisaster => "drplan::config::hook_blocks_disaster",
    HookNotRun => "drplan::plan::hook_not_run",
    UptimeBudget => "drplan::plan::uptime_budget",
    Read => "drplan::io::read",
    Write => "drplan::io::write",
    NotUtf8 => "drplan::io::not_utf8",
    ZeroActive => "drplan::plan::zero_active",
    MissingDeployment => "drplan::plan::missing_deployment",
    SplitBrain => "drplan::plan::split_brain",
    LastBackupDestination => "drplan::plan::last_backup_destination",
    ActiveCapacityDestroyed => "drplan::plan::active_capacity_destroyed",
    UnknownTarget => "drplan::plan::unknown_target",
    Cycle => "drplan::plan::cycle",
    NoRecoveryPoint => "drplan::plan::no_recovery_point",
    DataLoss => "drplan::plan::data_loss",
    ReplicaLag => "drplan::plan::replica_lag",
    Replication => "drplan::plan::replication",
    DrillRefused => "drplan::drill::refused",
    DrillInProgress => "drplan::drill::in_progress",
    FailoverOverride => "drplan::plan::failover_override",
    Incident => "drplan::plan::incident",
    EvidenceKept => "drplan::plan::evidence_kept",
    EvidenceDestroyed => "drplan::plan::evidence_destroyed",
    IncidentInput => "drplan::incident::invalid",
    UnknownIncident => "drplan::incident::unknown",
    State => "drplan::state::unreadable",
    StateTooNew => "drplan::state::too_new",
    StateConflict => "drplan::state::conflict",
    StateWrite => "drplan::state::write",
    Locked => "drplan::state::locked",
    BackendUnavailable => "drplan::state::backend_unavailable",
    NoState => "drplan::state::none",
    StateDiverged => "drplan::state::diverged",
    CopyUnreachable => "drplan::state::copy_unreachable",
    UnknownCopy => "drplan::state::unknown_copy",
    PlanFile => "drplan::plan::file",
    StalePlan => "drplan::plan::stale",
    Refresh => "drplan::refresh::unavailable",
    NoConfiguration => "drplan::io::no_configuration",
    PolicySyntax => "drplan::policy::syntax",
    PolicyEvaluation => "drplan::policy::evaluation",
    NoPolicies => "drplan::policy::none",
    PolicyDenied => "drplan::policy::denied",
    PolicyTestFailed => "drplan::policy::test_failed",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A labelled span. The first label of a diagnostic is its primary location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

/// One problem found in the user's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    /// A short summary that does not vary with the input ("unknown attribute").
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic { code, severity: Severity::Error, message: message.into(), labels: Vec::new(), help: None }
    }

    pub fn warning(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message) }
    }

    pub fn label(mut self, span: Span, text: impl Into<String>) -> Diagnostic {
        self.labels.push(Label { span, text: text.into() });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Where the diagnostic points first; used to sort diagnostics into source order.
    pub fn primary_span(&self) -> Option<&Span> {
        self.labels.first().map(|l| &l.span)
    }
}

/// An ordered collection of diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.0.len() - self.error_count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Source order (file, then offset), errors before warnings at the same place, so
    /// output does not depend on the order rules happened to run in.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            let key = |d: &Diagnostic| d.primary_span().map(|s| (s.file, s.range.start, s.range.end));
            key(a).cmp(&key(b)).then(a.severity.cmp(&b.severity)).then(a.code.cmp(&b.code))
        });
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.0
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

//! drplan-state: the versioned state file and its backends (a local file, an S3 object).

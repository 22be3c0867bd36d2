//! The executor as the binary uses it: `drplan_exec` (re-exported here), and the recorder
//! that writes each finished action to the state backend.

pub use drplan_exec::*;

/// The recorder `drplan apply` uses: the whole state written through a backend on each
/// save (serial + 1 for each write).
pub struct StateRecorder<'a> {
    pub backend: &'a dyn drplan_state::Backend,
    pub file: drplan_state::StateFile,
    pub prior: drplan_core::plan::Prior,
}

impl Recorder for StateRecorder<'_> {
    fn record(&mut self, change: &drplan_core::plan::Change, object: Option<drplan_core::plan::Observed>) {
        match object {
            Some(o) => self.prior.objects.insert(change.address.clone(), o),
            None => self.prior.objects.remove(&change.address),
        };
    }

    fn save(&mut self) -> Result<(), StepError> {
        self.file.set_content(&self.prior);
        self.file.serial += 1;
        self.file.drplan_version = env!("CARGO_PKG_VERSION").to_string();
        Ok(self.backend.write(&self.file)?)
    }
}

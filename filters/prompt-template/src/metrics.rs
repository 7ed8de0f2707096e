//! The filter's counters (shared by every attachment of the module, as filter metrics are):
//! `prompt_template_calls` (calls of a prompt API), `prompt_template_answered` (calls answered from the model),
//! `prompt_template_rejected` (calls refused before the model: 4xx), `prompt_template_upstream_errors`
//! (`upstream_error`, `bad_upstream_response`), `prompt_template_invalid_output` (`invalid_model_output`,
//! `model_refused`, in callout mode or as a reset in route mode), `prompt_template_decorated` (chat requests
//! decorated).

use weir_sdk::metrics::Counter;

/// Counter handles, defined once per configuration (a refused definition is left out: metrics never fail a
/// request).
#[derive(Debug, Default)]
pub struct Metrics {
    calls: Option<Counter>,
    answered: Option<Counter>,
    rejected: Option<Counter>,
    upstream_errors: Option<Counter>,
    invalid_output: Option<Counter>,
    decorated: Option<Counter>,
}

fn bump(counter: Option<&Counter>) {
    if let Some(c) = counter {
        c.increment(1);
    }
}

impl Metrics {
    /// Defines the counters.
    pub fn define() -> Metrics {
        let define = |name: &str| Counter::define(name).ok();
        Metrics {
            calls: define("prompt_template_calls"),
            answered: define("prompt_template_answered"),
            rejected: define("prompt_template_rejected"),
            upstream_errors: define("prompt_template_upstream_errors"),
            invalid_output: define("prompt_template_invalid_output"),
            decorated: define("prompt_template_decorated"),
        }
    }

    /// A call of the prompt API arrived.
    pub fn call(&self) {
        bump(self.calls.as_ref());
    }

    /// A call was answered from the model.
    pub fn answered(&self) {
        bump(self.answered.as_ref());
    }

    /// A chat request was decorated.
    pub fn decorated(&self) {
        bump(self.decorated.as_ref());
    }

    /// A call failed with `status` and `code`.
    pub fn failed(&self, status: u16, code: &str) {
        let counter = match code {
            "invalid_model_output" | "model_refused" => &self.invalid_output,
            _ if status < 500 => &self.rejected,
            _ => &self.upstream_errors,
        };
        bump(counter.as_ref());
    }
}

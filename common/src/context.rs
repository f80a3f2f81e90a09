//! What a function builds once at cold start and shares across invocations.

use std::sync::Arc;

use crate::{
    auth::Authenticator,
    aws::AwsClients,
    clock::{Clock, SystemClock},
    config::Config,
};

#[derive(Clone)]
pub struct AppContext {
    pub config: Arc<Config>,
    pub aws: AwsClients,
    pub auth: Arc<Authenticator>,
    pub clock: Arc<dyn Clock>,
}

impl AppContext {
    pub fn new(config: Config, aws: AwsClients) -> Self {
        let auth = Arc::new(Authenticator::new(&config.jwt));
        Self {
            config: Arc::new(config),
            aws,
            auth,
            clock: Arc::new(SystemClock),
        }
    }

    /// The same context reading another clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Configuration from the environment and SDK clients from the standard loader.
    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let config = Config::from_env()?;
        Ok(Self::new(config, crate::aws::load().await))
    }
}

//! What a function builds once at cold start and shares across invocations.

use std::sync::Arc;

use crate::{auth::Authenticator, aws::AwsClients, config::Config};

#[derive(Clone)]
pub struct AppContext {
    pub config: Arc<Config>,
    pub aws: AwsClients,
    pub auth: Arc<Authenticator>,
}

impl AppContext {
    pub fn new(config: Config, aws: AwsClients) -> Self {
        let auth = Arc::new(Authenticator::new(&config.jwt));
        Self {
            config: Arc::new(config),
            aws,
            auth,
        }
    }

    /// Configuration from the environment and SDK clients from the standard loader.
    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let config = Config::from_env()?;
        Ok(Self::new(config, crate::aws::load().await))
    }
}

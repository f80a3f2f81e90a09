//! What a function builds once at cold start and shares across invocations.

use std::sync::Arc;

use crate::{
    auth::Authenticator,
    aws::AwsClients,
    clock::{Clock, SystemClock},
    config::Config,
    source::{DynamoStore, Store},
};

#[derive(Clone)]
pub struct AppContext {
    pub config: Arc<Config>,
    pub aws: AwsClients,
    pub auth: Arc<Authenticator>,
    pub clock: Arc<dyn Clock>,
    /// Where exports read from: the configured DynamoDB tables.
    pub store: Arc<dyn Store>,
}

impl AppContext {
    pub fn new(config: Config, aws: AwsClients) -> Self {
        let auth = Arc::new(Authenticator::new(&config.jwt));
        let store = Arc::new(DynamoStore {
            client: aws.dynamodb.clone(),
            tables: config.tables.clone(),
        });
        Self {
            config: Arc::new(config),
            aws,
            auth,
            clock: Arc::new(SystemClock),
            store,
        }
    }

    /// The same context reading exports from another store (tests inject faults).
    pub fn with_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = store;
        self
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

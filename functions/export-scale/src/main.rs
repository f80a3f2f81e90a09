//! Lambda entrypoint: build the context once at cold start, then run each step of an
//! export at scale (start, convert, assemble, fail).

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};

/// mimalloc instead of glibc's malloc: the engine allocates per cell (docs/performance.md,
/// "The allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    common::alloc::tune();
    common::logging::init();
    let ctx = Arc::new(common::AppContext::from_env().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let ctx = Arc::clone(&ctx);
        async move { export_scale::handle(&ctx, event.payload).await }
    }))
    .await
}

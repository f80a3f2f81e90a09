//! Lambda entrypoint: build the context once at cold start, then index each batch of
//! stream records.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{Error, LambdaEvent, service_fn};

/// mimalloc instead of glibc's malloc, as in every function of this project.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    common::alloc::tune();
    common::logging::init();
    let ctx = Arc::new(common::AppContext::from_env().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let ctx = Arc::clone(&ctx);
        async move { Ok::<_, Error>(export_indexer::handle(&ctx, event.payload).await) }
    }))
    .await
}

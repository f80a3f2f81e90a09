//! Lambda entrypoint: build the context once at cold start, then serve events.

use std::{convert::Infallible, sync::Arc};

use lambda_http::{Error, Request, service_fn};

/// mimalloc instead of glibc's malloc: the engine allocates per cell (docs/performance.md,
/// "The allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    common::alloc::tune();
    common::logging::init();
    let ctx = Arc::new(common::AppContext::from_env().await?);
    lambda_http::run(service_fn(move |req: Request| {
        let ctx = Arc::clone(&ctx);
        // Exact: the response as built, byte-order mark and all (common::http::response::Exact).
        async move { Ok::<_, Infallible>(common::http::response::Exact(chats_export::handle(&ctx, req).await)) }
    }))
    .await
}

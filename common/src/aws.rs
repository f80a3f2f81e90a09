//! AWS SDK clients from the standard loader, so the same binaries run against real
//! AWS and the local emulators (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_SESV2`).

use aws_config::{BehaviorVersion, retry::RetryConfig};
use aws_smithy_http_client::tls;

#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ses: aws_sdk_sesv2::Client,
}

/// True when S3 is reached through an overridden endpoint (an emulator), which
/// needs path-style addressing: `bucket.127.0.0.1` does not resolve.
fn s3_endpoint_overridden() -> bool {
    let set = |v: Result<String, std::env::VarError>| v.is_ok_and(|s| !s.is_empty());
    set(std::env::var("AWS_ENDPOINT_URL_S3")) || set(std::env::var("AWS_ENDPOINT_URL"))
}

/// The SDK configuration every client is made from: the standard loader, one HTTP
/// client, standard retries. Public for the clients only the CLI needs (DynamoDB
/// Streams).
pub async fn shared_config() -> aws_config::SdkConfig {
    // One rustls+ring TLS stack instead of the SDK's default two (see TOOLCHAIN.md).
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

pub async fn load() -> AwsClients {
    let shared = shared_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&shared);
    let s3_config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(s3_endpoint_overridden())
        .build();
    AwsClients {
        dynamodb,
        s3: aws_sdk_s3::Client::from_conf(s3_config),
        sqs: aws_sdk_sqs::Client::new(&shared),
        ses: aws_sdk_sesv2::Client::new(&shared),
    }
}

//! A bound on how long a request's body may take to arrive. actix cuts off a request whose
//! head is slow (`client_request_timeout`), but once the head is in, a body that trickles
//! in a byte at a time would hold its connection and its handler for as long as the client
//! likes. Here the body must be complete by the same deadline, counted from when the head
//! was read; after it, reading the body fails, and the JSON extractor answers 408.

use std::{io, time::Duration};

use actix_http::BoxedPayloadStream;

use actix_web::{
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    error::PayloadError,
    http::{ConnectionType, StatusCode},
    middleware::Next,
    web, HttpMessage,
};
use futures_util::{stream, StreamExt};
use tokio::time::Instant;

/// `limits.request_read_timeout`, as app data.
#[derive(Debug, Clone, Copy)]
pub struct RequestReadTimeout(pub Duration);

pub async fn bound_body_read(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(timeout) = req
        .app_data::<web::Data<RequestReadTimeout>>()
        .map(|timeout| timeout.0)
    else {
        return next.call(req).await;
    };
    let deadline = Instant::now() + timeout;
    let body = req.take_payload();
    let bounded = stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(body))),
            Ok(None) => None,
            // Fails once, then ends: nothing more is read from this connection.
            Err(_) => Some((Err(PayloadError::Io(io::ErrorKind::TimedOut.into())), None)),
        }
    });
    let bounded: BoxedPayloadStream = Box::pin(bounded);
    req.set_payload(Payload::from(bounded));
    let mut response = next.call(req).await?;
    if response.status() == StatusCode::REQUEST_TIMEOUT {
        // The rest of the body may still be on its way: do not read this connection again.
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response)
}

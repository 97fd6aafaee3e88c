//! At most N of something at once ([`Places`]: the accept budget of the tokio targets, and
//! compio-tpc's budgets), and, for the tokio targets, the upstream side of the descriptor
//! budget: hyper-util's connector, with a place for every connection it opens. A connect waits
//! for a free place; the connection gives its place back when its socket closes.
//!
//! The accept side alone is not enough. A client that hangs up while its fetch is in flight
//! frees its connection's place at once (actix drops the handler), while the upstream socket
//! of its fetch may still be open. After 10,000 clients hung up that way, new clients were
//! accepted, 519 of their fetches in 30 s found no descriptor, and tokio-actix answered 503
//! "out of file descriptors" (docs/scenarios.md, tsutsumi). With places, such a fetch waits
//! for an upstream connection to close instead: none since.

use std::sync::Arc;
#[cfg(feature = "tokio")]
use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
};

#[cfg(feature = "tokio")]
use hyper::rt::{Read, ReadBufCursor, Write};
#[cfg(feature = "tokio")]
use hyper::Uri;
#[cfg(feature = "tokio")]
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most N of something held at once (none: no cap): a holder takes a place, waiting for
/// one when all are taken, and gives it back when it drops its permit. The accept loops'
/// client connections (`tokio_stack::Budget`) and the upstream connections
/// ([`PlacedConnector`]) each have their own.
#[derive(Clone, Default)]
pub struct Places(Option<Arc<Semaphore>>);

impl Places {
    pub fn new(n: Option<usize>) -> Places {
        Places(n.map(|n| Arc::new(Semaphore::new(n))))
    }

    /// A place, once one is free; `None` without a cap.
    pub async fn take(&self) -> Option<OwnedSemaphorePermit> {
        // The semaphore is never closed, so the wait ends with a permit.
        self.0.clone()?.acquire_owned().await.ok()
    }
}

/// `HttpConnector` with at most `places` connections open at once (none: no cap).
#[derive(Clone)]
#[cfg(feature = "tokio")]
pub struct PlacedConnector {
    inner: HttpConnector,
    places: Places,
}

#[cfg(feature = "tokio")]
impl PlacedConnector {
    pub fn new(inner: HttpConnector, places: Option<usize>) -> PlacedConnector {
        PlacedConnector {
            inner,
            places: Places::new(places),
        }
    }
}

#[cfg(feature = "tokio")]
type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[cfg(feature = "tokio")]
impl tower_service::Service<Uri> for PlacedConnector {
    type Response = Placed<<HttpConnector as tower_service::Service<Uri>>::Response>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let mut inner = self.inner.clone();
        let places = self.places.clone();
        Box::pin(async move {
            let place = places.take().await;
            let io = inner.call(uri).await?;
            Ok(Placed { io, _place: place })
        })
    }
}

/// A connection holding its place until it is dropped (its socket closed).
#[cfg(feature = "tokio")]
pub struct Placed<T> {
    io: T,
    _place: Option<OwnedSemaphorePermit>,
}

#[cfg(feature = "tokio")]
impl<T: Read + Unpin> Read for Placed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

#[cfg(feature = "tokio")]
impl<T: Write + Unpin> Write for Placed<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(feature = "tokio")]
impl<T: Connection> Connection for Placed<T> {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

#[cfg(all(test, feature = "tokio"))]
mod tests {
    use super::*;
    use tower_service::Service;

    /// With 2 places, a third connect waits: the listener has accepted 2 connections until one
    /// of them is dropped, then the third arrives.
    #[tokio::test(flavor = "current_thread")]
    async fn a_connect_waits_for_a_place_and_gets_one_when_a_connection_closes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}/", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let mut connector = PlacedConnector::new(HttpConnector::new(), Some(2));
        let first = connector.call(uri.clone()).await.unwrap();
        let _second = connector.call(uri.clone()).await.unwrap();
        let mut third = Box::pin(connector.call(uri));
        let mut accepted = Vec::new();
        for _ in 0..2 {
            accepted.push(listener.accept().await.unwrap());
        }
        let waited = tokio::time::timeout(std::time::Duration::from_millis(200), &mut third).await;
        assert!(waited.is_err(), "a third connection with two places");
        let pending = tokio::time::timeout(std::time::Duration::from_millis(50), listener.accept());
        assert!(pending.await.is_err(), "the third reached the listener");
        drop(first);
        let _third = third.await.unwrap();
        listener.accept().await.unwrap();
    }
}

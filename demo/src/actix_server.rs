//! The demo receiver on actix-web 4: each provider's resource wrapped in
//! `tower_webhook::actix::WebhookMiddleware`, and a handler taking the
//! `actix::Webhook<serde_json::Value>` extractor.

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::Value;
use tower_webhook::actix::{Webhook, WebhookMiddleware};

use crate::{Events, Secrets};

async fn accept(events: web::Data<Events>, hook: Webhook<Value>) -> HttpResponse {
    crate::record(&events, &hook.meta);
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"ok":true}"#)
}

async fn list(events: web::Data<Events>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::events_json(&events))
}

/// Serves the demo on `listener`, inside an actix system.
///
/// # Errors
/// The store (Redis) or the settings from the environment fail, or the
/// server stops on an I/O error.
pub async fn run(
    listener: std::net::TcpListener,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let store = crate::store().await?;
    crate::prometheus();
    let mut layers = Vec::new();
    let mut demos = Vec::new();
    for r in crate::routes()? {
        if r.secret.demo {
            demos.push((r.path.clone(), r.secret.var, r.secret.value.clone()));
        }
        let path = r.path.clone();
        layers.push((path, crate::layer(r, &store)?));
    }
    let events = web::Data::new(Events::default());

    crate::banner(
        "actix",
        listener.local_addr()?,
        &Secrets::from_env()?,
        &demos,
    );
    HttpServer::new(move || {
        let mut app = App::new()
            .app_data(events.clone())
            .route("/events", web::get().to(list))
            .route(
                "/metrics",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("text/plain; version=0.0.4")
                        .body(crate::metrics_text())
                }),
            );
        for (path, layer) in &layers {
            app = app.service(
                web::resource(path.as_str())
                    .wrap(WebhookMiddleware::new(layer))
                    .route(web::post().to(accept)),
            );
        }
        app
    })
    .workers(2)
    // A client has 5 s to send its whole request head (actix's default,
    // spelled out: tower_webhook::server::HEAD_TIMEOUT for axum and hyper).
    .client_request_timeout(std::time::Duration::from_secs(5))
    .listen(listener)?
    .run()
    .await?;
    Ok(())
}

//! hello-world: the floor of `make bench`. The smallest `lambda_http` function, with the same
//! lambda_http features and tokio runtime as billflow's functions, answering every request with
//! a fixed body. Each budget of the platform is a ratio to what this costs on the same machine.
use lambda_http::{service_fn, Body, Error, Request, Response};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async { Ok::<_, Error>(Response::new(Body::from("hello"))) })).await
}

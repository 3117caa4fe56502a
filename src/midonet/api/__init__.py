"""The REST API: MidoNet's v5 API (spec section 7), served by FastAPI over a `Store`.

    app          -- `create_app(store, auth)`: the FastAPI application under /midonet-api
    errors       -- `ApiError` and the mapping of every error to MidoNet's error body
    media        -- vendor media types, Accept / Content-Type negotiation
    auth         -- users and roles from a config file, login, tokens that expire, tenant scoping
    resource     -- `Resource`: one REST resource = record class + DTO mapping + tenant rule; generic CRUD
    root         -- POST /login, the Application root, tenants, system_state
    devices      -- bridges, routers, ports (+ link), routes
    chains       -- chains and rules (with `position`)
    (further resource families live in one module each)

May import: `midonet.topology`, `midonet.store`. Stateless: run as many API servers as you like.
"""

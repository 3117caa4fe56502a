"""A small typed client of MidoNet's v5 REST API (the CLI, sandbox and testbed use it).

    client   -- `Client` (login, token, re-login on 401, generic CRUD), the `ClientError` family
    catalog  -- `Catalog`: the Application root indexed by kind, and the spellings of kind names

May import: `midonet.topology` (nothing of ours so far); it speaks HTTP only, never to the store.
"""

from midonet.client.catalog import Catalog, UnknownKindError, camel_case, snake_case
from midonet.client.client import DEFAULT_API_URL, ApiError, Client, ClientError, Dto, UnreachableError

__all__ = ["DEFAULT_API_URL", "ApiError", "Catalog", "Client", "ClientError", "Dto", "UnknownKindError",
           "UnreachableError", "camel_case", "snake_case"]

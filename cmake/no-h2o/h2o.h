/* cmake/no-h2o: stands in for <h2o.h> on the include path of storage/ and berthproto. */
#error "h2o is server-only: include it from server/ only (storage/ and the pure parsers are built without h2o)"

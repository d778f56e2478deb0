"""Card payment: card data never in the clear (`crypto`: the token, the envelope only
the gateway opens, the key files) and the payment of a session (`card`:
pre-authorisation, capture of the bill's amount, void, refunds)."""

"""The operator's backend: typed messages (`messages`), the `Backend` protocol and what
the links share (`api`), the MQTT envelope, topics and command models (`protocol`), the
links (`mqtt`, `loopback`; `factory.create_backend` builds the one `[backend] kind`
names), what the backend pushes (`inbox`) and the commands it may give (`commands`)."""

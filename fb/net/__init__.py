"""Communication service FBs (PUBLISH_n, SUBSCRIBE_n, CLIENT_n_m, SERVER_n_m) and their layers."""

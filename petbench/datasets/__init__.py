"""Dataset implementations (readers, simulators); their plugins live in default_plugins/."""

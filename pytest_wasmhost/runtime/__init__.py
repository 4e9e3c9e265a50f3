"""Engine, instances and the plugin facade."""

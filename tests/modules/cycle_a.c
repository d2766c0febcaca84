int placeholder_cycle_a;

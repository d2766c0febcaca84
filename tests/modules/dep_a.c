int placeholder_dep_a;

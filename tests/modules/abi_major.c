int placeholder_abi_major;

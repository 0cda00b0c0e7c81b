// The public API of src/disk; filled in as the area lands.
export {};

// The public API of src/instance; filled in as the area lands.
export {};

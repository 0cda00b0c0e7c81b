// The public API of src/build; filled in as the area lands.
export {};

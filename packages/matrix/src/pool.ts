export interface MatrixPool {
  readonly threads: number;
}

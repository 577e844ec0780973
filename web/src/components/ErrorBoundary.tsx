// A panel that fails to draw says so and offers a retry, instead of taking the whole app down with it.

import { Component, type ReactNode } from "react";

interface State {
  error: Error | null;
}

export class ErrorBoundary extends Component<{ name: string; children: ReactNode }, State> {
  state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  render() {
    if (!this.state.error) return this.props.children;
    return (
      <div className="sf-error sf-boundary" role="alert">
        <strong>The {this.props.name} could not be drawn.</strong> {String(this.state.error.message || this.state.error)}
        <div>
          <button onClick={() => this.setState({ error: null })}>Try again</button>
        </div>
      </div>
    );
  }
}
